package store

import (
	"context"
	"time"
)

// RunGC calls GarbageCollect on st now and then every `every`, until ctx
// ends, with the policy policy() gives at each call (it follows a config
// reload) and the time now() gives. report, when set, is told of every
// call's result. A call that collected a full batch of some kind is
// followed at once by another, so a backlog drains without waiting a
// period per batch.
func RunGC(ctx context.Context, st interface {
	GarbageCollect(context.Context, time.Time, GCPolicy) (GCResult, error)
}, every time.Duration, policy func() GCPolicy, now func() time.Time, report func(GCResult, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r, err := st.GarbageCollect(ctx, now(), policy())
		if ctx.Err() != nil {
			return
		}
		if report != nil {
			report(r, err)
		}
		if err == nil && r.Full() {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Full reports whether a GarbageCollect call deleted a whole batch of some
// kind, so that there may be more of it to collect.
func (r GCResult) Full() bool {
	return max(r.Requests, r.Approvals, r.Lockouts, r.Notices, r.Failures, r.Declines, r.SetupTokens, r.DeviceRequests, r.WebSessions, r.Changes) >= GCBatch
}

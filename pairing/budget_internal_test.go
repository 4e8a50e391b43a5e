package pairing

import (
	"fmt"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
)

// Invented accounts cannot grow the budget without end: past
// maxBudgetScopes live windows a new scope gets no notice, until windows
// are over and their scopes are forgotten.
func TestNoticeBudgetIsBounded(t *testing.T) {
	var b noticeBudget
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	const window = 10 * time.Minute
	scope := func(i int) store.Scope { return store.Scope{Channel: "telegram", Account: fmt.Sprint("a", i)} }
	for i := range maxBudgetScopes {
		if !b.allows(scope(i), now, window) {
			t.Fatalf("scope %d of %d refused", i, maxBudgetScopes)
		}
	}
	if b.allows(scope(maxBudgetScopes), now.Add(time.Minute), window) {
		t.Error("a scope past the bound was allowed while every window is live")
	}
	if !b.allows(scope(0), now.Add(time.Minute), window) {
		t.Error("a remembered scope was refused")
	}
	if !b.allows(scope(maxBudgetScopes), now.Add(window), window) {
		t.Error("a new scope refused once the windows were over")
	}
	if len(b.windows) > maxBudgetScopes {
		t.Errorf("the budget remembers %d scopes, more than %d", len(b.windows), maxBudgetScopes)
	}
	for range noticesPerWindow {
		b.spend(scope(1), now.Add(window), window)
	}
	if b.allows(scope(1), now.Add(window), window) {
		t.Error("a scope that told its share was allowed another notice in the window")
	}
}

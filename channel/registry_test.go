package channel

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNames(t *testing.T) {
	want := []string{"telegram", "whatsapp", "signal", "discord", "slack", "imessage", "feishu", "matrix", "email"}
	got := Names()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Names() (-want +got):\n%s", diff)
	}
	got[0] = "changed"
	if again := Names(); again[0] != "telegram" {
		t.Errorf("Names() shares its slice between calls: got %q after a caller changed it", again[0])
	}
}

func TestRegistryGet(t *testing.T) {
	r := NewRegistry()
	for _, name := range Names() {
		a, err := r.Get(name)
		if err != nil {
			t.Fatalf("Get(%q): %v", name, err)
		}
		if a.Name() != name {
			t.Errorf("Get(%q).Name() = %q", name, a.Name())
		}
	}
}

func TestRegistryGetUnknown(t *testing.T) {
	r := NewRegistry()
	for _, name := range []string{"", "Telegram", "TELEGRAM", " telegram", "telegram ", "sms", "irc", "tg"} {
		a, err := r.Get(name)
		if !errors.Is(err, ErrUnknownChannel) || a != nil {
			t.Errorf("Get(%q) = %v, %v; want an error wrapping ErrUnknownChannel", name, a, err)
			continue
		}
		if !strings.Contains(err.Error(), strings.Join(Names(), ", ")) {
			t.Errorf("Get(%q) error %q does not list the valid names", name, err)
		}
	}
	want := `unknown channel "irc"; channels: telegram, whatsapp, signal, discord, slack, imessage, feishu, matrix, email`
	if _, err := r.Get("irc"); err == nil || err.Error() != want {
		t.Errorf("Get(\"irc\") error = %v, want %s", err, want)
	}
}

func TestRegistryNilAndZero(t *testing.T) {
	var nilRegistry *Registry
	if _, err := nilRegistry.Get("telegram"); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("nil Registry: Get = %v, want ErrUnknownChannel", err)
	}
	if _, err := new(Registry).Get("telegram"); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("zero Registry: Get = %v, want ErrUnknownChannel", err)
	}
}

func TestRegistryGetZeroAlloc(t *testing.T) {
	r := NewRegistry()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Get("whatsapp"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Get allocates %v times, want 0", allocs)
	}
}

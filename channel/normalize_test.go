package channel

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// normalizeCase is one Normalize example. An empty want means the sender
// must be refused.
type normalizeCase struct {
	raw  string
	want string
}

// refuse marks a case whose input must be refused.
func refuse(raw string) normalizeCase { return normalizeCase{raw: raw} }

// normalizeCases holds every example of SPEC section 5 and the refusals,
// by channel name.
var normalizeCases = map[string][]normalizeCase{
	"telegram": {
		{"123456789", "123456789"},
		{"telegram:123456789", "123456789"},
		{"tg:123456789", "123456789"},
		{"TG:123456789", "123456789"},
		{"Telegram:123456789", "123456789"},
		{"user:123456789", "123456789"},
		{"tg: 123456789", "123456789"},
		{"telegram:tg:123456789", "123456789"},
		{"  123456789\t", "123456789"},
		{"123456789\n", "123456789"},
		{"9223372036854775807", "9223372036854775807"},
		{"1", "1"},
		refuse("-100123456789"), // a supergroup
		refuse("-123456"),       // a group
		refuse("@alice"),
		refuse("abc"),
		refuse("12a"),
		refuse("0"),
		refuse("0123"),
		refuse("+123"),
		refuse("1.5"),
		refuse("1e9"),
		refuse("1_000"),
		refuse("9223372036854775808"),
		refuse("99999999999999999999999"),
		refuse("１２３"),                // fullwidth digits
		refuse("\u0661\u0662\u0663"), // Arabic-Indic digits
		refuse("123\u200b"),          // zero-width space
		refuse("\u202e123"),          // right-to-left override
		refuse("telegram:"),
		refuse("tg:user:"),
		refuse("chat:123"),
		refuse("12 3"),
	},
	"whatsapp": {
		{"+5491155556666", "+5491155556666"},
		{"5491155556666", "+5491155556666"},
		{"5491155556666@c.us", "+5491155556666"},
		{"5491155556666@s.whatsapp.net", "+5491155556666"},
		{"5491155556666:12@s.whatsapp.net", "+5491155556666"},
		{"5491155556666@lid", "+5491155556666"},
		{"whatsapp:+5491155556666", "+5491155556666"},
		{"WhatsApp:5491155556666@S.WhatsApp.Net", "+5491155556666"},
		{"user:5491155556666@c.us", "+5491155556666"},
		{"+54 9 11 5555-6666", "+5491155556666"},
		{"+1 (555) 123-4567", "+15551234567"},
		{"+1234567", "+1234567"},
		{"+123456789012345", "+123456789012345"},
		refuse("120363025246125888@g.us"),
		refuse("5491155556666-1600000000@g.us"),
		refuse("status@broadcast"),
		refuse("120363025246125888@newsletter"),
		refuse("5491155556666@example.com"),
		refuse("5491155556666:ab@s.whatsapp.net"),
		refuse("5491155556666:@s.whatsapp.net"),
		refuse("+5491155556666@s.whatsapp.net"),
		refuse("@s.whatsapp.net"),
		refuse("5491155556666@"),
		refuse("+123456"),           // too short
		refuse("+1234567890123456"), // 16 digits
		refuse("+0123456789"),
		refuse("+"),
		refuse("++5491155556666"),
		refuse("+54911555x56666"),
		refuse("alice"),
		refuse("+５４９１１５５５５６６６６"),
	},
	"signal": {
		{"+15551234567", "+15551234567"},
		{"signal:+15551234567", "+15551234567"},
		{"user:+15551234567", "+15551234567"},
		{"+1 555 123 4567", "+15551234567"},
		{"uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{"UUID:0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", "uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{"uuid:0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", "uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{"0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", "uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{"signal:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		refuse("15551234567"), // no country code marker
		refuse("uuid:"),
		refuse("uuid:not-a-uuid"),
		refuse("uuid:0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
		refuse("uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f"),
		refuse("uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg"),
		refuse("{0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0}"),
		refuse("PNI:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
		refuse("u:alice.01"),
		refuse("group.abc"),
		refuse("+0123456789"),
	},
	"discord": {
		{"123", "123"},
		{"<@123>", "123"},
		{"<@!123>", "123"},
		{"80351110224678912", "80351110224678912"},
		{"discord:80351110224678912", "80351110224678912"},
		{"user:80351110224678912", "80351110224678912"},
		{"discord:<@!80351110224678912>", "80351110224678912"},
		{"18446744073709551615", "18446744073709551615"},
		refuse("<@&123>"), // a role
		refuse("<#123>"),  // a channel
		refuse("<@123"),
		refuse("<@>"),
		refuse("<@!>"),
		refuse("@123"),
		refuse("alice#1234"),
		refuse("18446744073709551616"),
		refuse("0"),
		refuse("-1"),
		refuse("abc"),
	},
	"slack": {
		{"U024BE7LH", "U024BE7LH"},
		{"u024be7lh", "U024BE7LH"},
		{"W012A3CDE", "W012A3CDE"},
		{"slack:U024BE7LH", "U024BE7LH"},
		{"user:u024be7lh", "U024BE7LH"},
		{"<@U024BE7LH>", "U024BE7LH"},
		{"<@U024BE7LH|bob>", "U024BE7LH"},
		refuse("B01234567"), // a bot
		refuse("C024BE7LH"), // a channel
		refuse("U"),
		refuse("U024-BE7LH"),
		refuse("U024BE7LHÜ"),
		refuse("U024BE7LH\u200d"),
		refuse("U" + strings.Repeat("A", 40)),
		refuse("<@U024BE7LH"),
		refuse("<@>"),
		refuse("@bob"),
	},
	"imessage": {
		{"+15551234567", "+15551234567"},
		{"alice@icloud.com", "alice@icloud.com"},
		{"imessage:+15551234567", "+15551234567"},
		{"sms:+15551234567", "+15551234567"},
		{"auto:Alice@iCloud.com", "alice@icloud.com"},
		{"iMessage:alice@icloud.com", "alice@icloud.com"},
		{"+1 (555) 123-4567", "+15551234567"},
		refuse("5551234567"),
		refuse("chat123456789"),
		refuse("iMessage;-;+15551234567"),
		refuse("alice@"),
		refuse("bob@@icloud.com"),
		refuse("ａlice@icloud.com"),
		refuse("\u212Aate@icloud.com"), // Kelvin sign, lower-cases to 'k'
		refuse("sms:"),
	},
	"feishu": {
		{"ou_7d8a6e6df7621556ce0d21922b676706", "ou_7d8a6e6df7621556ce0d21922b676706"},
		{"open_id:ou_7d8a6e6df7621556ce0d21922b676706", "ou_7d8a6e6df7621556ce0d21922b676706"},
		{"feishu:ou_7d8a6e6df7621556ce0d21922b676706", "ou_7d8a6e6df7621556ce0d21922b676706"},
		{"lark:open_id:ou_AbC-12_x", "ou_AbC-12_x"},
		{"ou_AbC-12_x", "ou_AbC-12_x"},
		refuse("oc_7d8a6e6df7621556ce0d21922b676706"), // a chat
		refuse("on_7d8a6e6df7621556ce0d21922b676706"), // a union id
		refuse("OU_7d8a6e6df7621556ce0d21922b676706"),
		refuse("ou_"),
		refuse("ou_a b"),
		refuse("ou_ä"),
		refuse("ou_abc.def"),
		refuse("ou_" + strings.Repeat("a", 200)),
		refuse("7d8a6e6df7621556ce0d21922b676706"),
	},
	"matrix": {
		{"@alice:example.org", "@alice:example.org"},
		{"@Alice:Example.ORG", "@alice:example.org"},
		{"matrix:@alice:example.org", "@alice:example.org"},
		{"@alice:example.org:8448", "@alice:example.org:8448"},
		{"@bob:[::1]:8448", "@bob:[::1]:8448"},
		{"@bob:[2001:DB8::1]", "@bob:[2001:db8::1]"},
		{"@bob:127.0.0.1", "@bob:127.0.0.1"},
		{"@bob:localhost", "@bob:localhost"},
		{"@alice.x_y=z-/+:matrix.org", "@alice.x_y=z-/+:matrix.org"},
		refuse("alice:example.org"),
		refuse("@alice"),
		refuse("@:example.org"),
		refuse("@alice:"),
		refuse("@alice:exa mple.org"),
		refuse("@ali ce:example.org"),
		refuse("@alice:example.org:99999"),
		refuse("@alice:example.org:0"),
		refuse("@alice:example.org:"),
		refuse("@alice:[::1"),
		refuse("@alice:[::1]8448"),
		refuse("@alice:[fe80::1%eth0]"),
		refuse("@alice:[1.2.3.4]"),
		refuse("@alice:-bad.org"),
		refuse("@alice:example.org."),
		refuse("@alicé:example.org"),
		refuse("!room:example.org"),
		refuse("#room:example.org"),
		refuse("@" + strings.Repeat("a", 250) + ":example.org"),
	},
	"email": {
		{"a@b.example", "a@b.example"},
		{"Alice@Example.COM", "alice@example.com"},
		{"mailto:alice@example.com", "alice@example.com"},
		{"email:alice@example.com", "alice@example.com"},
		{"alice+tag@example.com", "alice+tag@example.com"},
		{"first.last@sub.example.co.uk", "first.last@sub.example.co.uk"},
		{"root@localhost", "root@localhost"},
		{"xn--bcher-kva@xn--bcher-kva.example", "xn--bcher-kva@xn--bcher-kva.example"},
		refuse("alice"),
		refuse("alice@"),
		refuse("@example.com"),
		refuse("a@b@example.com"),
		refuse("alice@example..com"),
		refuse("alice@example.com."),
		refuse(".alice@example.com"),
		refuse("alice.@example.com"),
		refuse("al..ice@example.com"),
		refuse("alice@-example.com"),
		refuse(`"a b"@example.com`),
		refuse("alice@[192.0.2.1]"),
		refuse("al ice@example.com"),
		refuse("alicé@example.com"),
		refuse("\u212Aate@example.com"), // Kelvin sign, lower-cases to 'k'
		refuse("alice@exämple.com"),
		refuse("a\u200b@example.com"),
		refuse("alice@example.com\u202e"),
		refuse("Alice <alice@example.com>"),
		refuse(strings.Repeat("a", 65) + "@example.com"),
	},
}

// canonicalSenders holds one canonical sender per channel: Normalize must
// return each as it is, without allocating.
var canonicalSenders = map[string]string{
	"telegram": "123456789",
	"whatsapp": "+5491155556666",
	"signal":   "+15551234567",
	"discord":  "80351110224678912",
	"slack":    "U024BE7LH",
	"imessage": "+15551234567",
	"feishu":   "ou_7d8a6e6df7621556ce0d21922b676706",
	"matrix":   "@alice:example.org",
	"email":    "a@b.example",
}

func mustGet(t testing.TB, r *Registry, name string) Adapter {
	t.Helper()
	a, err := r.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNormalize(t *testing.T) {
	r := NewRegistry()
	for _, name := range Names() {
		a := mustGet(t, r, name)
		cases := normalizeCases[name]
		if len(cases) == 0 {
			t.Errorf("%s: no test cases", name)
		}
		for _, tc := range cases {
			got, err := a.Normalize(tc.raw)
			if tc.want == "" {
				if err == nil {
					t.Errorf("%s.Normalize(%q) = %q, want an error", name, tc.raw, got)
				} else if !errors.Is(err, ErrInvalidSender) {
					t.Errorf("%s.Normalize(%q) error %v does not wrap ErrInvalidSender", name, tc.raw, err)
				}
				if got != "" {
					t.Errorf("%s.Normalize(%q) returned %q with its error, want \"\"", name, tc.raw, got)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s.Normalize(%q): %v", name, tc.raw, err)
				continue
			}
			if got != tc.want {
				t.Errorf("%s.Normalize(%q) = %q, want %q", name, tc.raw, got, tc.want)
			}
			// What Normalize returns is canonical: normalising it again
			// changes nothing.
			if again, err := a.Normalize(got); err != nil || again != got {
				t.Errorf("%s.Normalize(%q) = %q, %v; not idempotent", name, got, again, err)
			}
		}
	}
}

// TestNormalizeShared checks the rules every channel shares.
func TestNormalizeShared(t *testing.T) {
	r := NewRegistry()
	bad := map[string]string{
		"empty":                  "",
		"blank":                  " \t\r\n",
		"NUL":                    "\x00",
		"control inside":         "12\x0734",
		"DEL":                    "12\x7f34",
		"C1 control":             "12\u008534",
		"invalid UTF-8":          "\xff\xfe",
		"truncated UTF-8":        "12\xe2\x82",
		"overlong":               strings.Repeat("1", MaxSenderLen+1),
		"overlong by spaces":     strings.Repeat(" ", MaxSenderLen) + "1",
		"prefix only":            "user:",
		"right-to-left override": "\u202e",
	}
	for _, name := range Names() {
		a := mustGet(t, r, name)
		for what, raw := range bad {
			got, err := a.Normalize(raw)
			if !errors.Is(err, ErrInvalidSender) || got != "" {
				t.Errorf("%s: %s: Normalize(%q) = %q, %v; want an error wrapping ErrInvalidSender", name, what, raw, got, err)
			}
		}
	}
}

func TestNormalizeErrorText(t *testing.T) {
	r := NewRegistry()
	tests := []struct {
		channel, raw, want string
	}{
		{"telegram", "abc", `telegram sender "abc": want a numeric Telegram user id such as 123456789: invalid sender`},
		{"telegram", "-100123", `telegram sender "-100123": a group or channel id (negative); want a numeric Telegram user id such as 123456789: invalid sender`},
		{"telegram", "", `telegram sender "": empty; want a numeric Telegram user id such as 123456789: invalid sender`},
		{"whatsapp", "123@g.us", `whatsapp sender "123@g.us": a group, not a person; want a WhatsApp phone number such as +5491155556666 or 5491155556666@s.whatsapp.net: invalid sender`},
		{"slack", "a\x00b", `slack sender "a\x00b": contains a control character; want a Slack user id such as U024BE7LH: invalid sender`},
		{"email", "\xff", `email sender "\xff": not valid UTF-8; want an email address such as alice@example.com: invalid sender`},
		{"discord", strings.Repeat("9", 300), `discord sender "` + strings.Repeat("9", errQuoteLen) + `"... (300 bytes): longer than 256 bytes; want a Discord user id such as 123456789012345678 or <@123456789012345678>: invalid sender`},
	}
	for _, tc := range tests {
		_, err := mustGet(t, r, tc.channel).Normalize(tc.raw)
		if err == nil {
			t.Errorf("%s.Normalize(%q) succeeded, want an error", tc.channel, tc.raw)
			continue
		}
		if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
			t.Errorf("%s.Normalize(%q) error (-want +got):\n%s", tc.channel, tc.raw, diff)
		}
	}
}

func TestQuoteShortCutsAtRuneBoundary(t *testing.T) {
	s := strings.Repeat("a", errQuoteLen-1) + "é" + strings.Repeat("b", 10)
	want := `"` + strings.Repeat("a", errQuoteLen-1) + `"... (75 bytes)`
	if got := quoteShort(s); got != want {
		t.Errorf("quoteShort = %s, want %s", got, want)
	}
}

// TestNormalizeCanonicalZeroAlloc holds the hot-path promise: a canonical
// sender comes back as the very same string, and nothing is allocated.
func TestNormalizeCanonicalZeroAlloc(t *testing.T) {
	r := NewRegistry()
	for _, name := range Names() {
		in, ok := canonicalSenders[name]
		if !ok {
			t.Errorf("%s: no canonical sender to test", name)
			continue
		}
		a := mustGet(t, r, name)
		out, err := a.Normalize(in)
		if err != nil || out != in || unsafe.StringData(out) != unsafe.StringData(in) {
			t.Errorf("%s.Normalize(%q) = %q, %v; want the input itself", name, in, out, err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := a.Normalize(in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s.Normalize(%q) allocates %v times, want 0", name, in, allocs)
		}
	}
}

func BenchmarkNormalizeCanonical(b *testing.B) {
	r := NewRegistry()
	for _, name := range Names() {
		a := mustGet(b, r, name)
		in := canonicalSenders[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Normalize(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestIsDecimalID(t *testing.T) {
	tests := []struct {
		s    string
		bits int
		want bool
	}{
		{"1", 1, true},
		{"2", 1, false},
		{"65535", 16, true},
		{"65536", 16, false},
		{"9223372036854775807", 63, true},
		{"9223372036854775808", 63, false},
		{"18446744073709551615", 64, true},
		{"18446744073709551616", 64, false},
		{"99999999999999999999", 64, false},
		{"0", 64, false},
		{"01", 64, false},
		{"", 64, false},
		{"1a", 64, false},
		{"-1", 64, false},
		{"1", 0, false},
		{"1", 65, false},
	}
	for _, tc := range tests {
		if got := isDecimalID(tc.s, tc.bits); got != tc.want {
			t.Errorf("isDecimalID(%q, %d) = %v, want %v", tc.s, tc.bits, got, tc.want)
		}
	}
}

func TestIsHostname(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		s    string
		want bool
	}{
		{"example.org", true},
		{"localhost", true},
		{"a-b.c-d.example", true},
		{"127.0.0.1", true},
		{"xn--bcher-kva.example", true},
		{long + ".example", true},
		{long + "a.example", false},
		{strings.Repeat(long+".", 4)[:253], true},
		{strings.Repeat(long+".", 4)[:254], false},
		{"", false},
		{".", false},
		{"example.org.", false},
		{".example.org", false},
		{"example..org", false},
		{"-example.org", false},
		{"example-.org", false},
		{"example.org-", false},
		{"exa_mple.org", false},
		{"exa mple.org", false},
		{"exämple.org", false},
	}
	for _, tc := range tests {
		if got := isHostname(tc.s); got != tc.want {
			t.Errorf("isHostname(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

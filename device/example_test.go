package device

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/pairgate/pairgate/secret"
)

// Example_signedStrings is the worked example of README.md: every value the
// gateway and a device compute, from fixed inputs. HMAC and Ed25519 are
// deterministic, so another implementation must print exactly these lines.
func Example_signedStrings() {
	// The gateway: a setup token (SPEC section 3) of key 1.
	secretBytes := make([]byte, secret.Size) // 0x20, 0x21, … 0x3f
	for i := range secretBytes {
		secretBytes[i] = byte(0x20 + i)
	}
	sec, err := secret.FromBytes(secretBytes)
	if err != nil {
		panic(err)
	}
	t := Token{KID: 1, ExpiresAt: time.Date(2026, 11, 24, 9, 10, 0, 0, time.UTC)}
	for i := range t.ID { // 0x10, 0x11, … 0x1b
		t.ID[i] = byte(0x10 + i)
	}
	token := NewKeys(sec).encode(t)
	raw, _ := tokenEncoding.DecodeString(strings.TrimPrefix(token, tokenPrefix))
	fmt.Printf("key 1: %x\n", sec.Derive(KeyPurpose(1)))
	fmt.Printf("tagged: %q + %x\n", tokenPrefix, raw[:signedLen])
	fmt.Printf("tag: %x\n", raw[signedLen:])
	fmt.Println("token:", token)
	code, err := EncodeSetupCode(SetupCode{URL: "wss://gateway.example.com/pair", Token: token, ExpiresAt: t.ExpiresAt})
	if err != nil {
		panic(err)
	}
	fmt.Println("setup code:", code)

	// The device: its key, the server's nonce, the strings it signs.
	seed := make([]byte, ed25519.SeedSize) // 0x00, 0x01, … 0x1f
	for i := range seed {
		seed[i] = byte(i)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	nonce := b64url.EncodeToString([]byte(strings.Repeat("B", 32))) // from the server's challenge
	const (
		signedAt  = int64(1795510800000) // 2026-11-24T09:00:00Z
		requestID = "dreq_example"
	)
	id := DeviceID(pub)
	show := func(name, s string) {
		fmt.Printf("%s string: %q\n", name, s)
		fmt.Printf("%s signature: %s\n", name, b64url.EncodeToString(ed25519.Sign(key, []byte(s))))
	}
	fmt.Println("public_key:", b64url.EncodeToString(pub))
	fmt.Println("device_id:", id)
	fmt.Println("nonce:", nonce)
	fmt.Printf("token sha256: %x\n", sha256.Sum256([]byte(token)))
	show("pair", pairString(nonce, id, signedAt, token))
	fmt.Println("check_code:", CheckCode(nonce, id))
	show("resume", resumeString(nonce, requestID, id, signedAt))
	show("auth", authString(nonce, id, signedAt))
	// Output:
	// key 1: e66e921243378b1c790accf04fc1c7a6b145fe8c702fe5502463c499852a8f21
	// tagged: "pg2_" + 016b055468101112131415161718191a1b
	// tag: d0f5a8c02888790d6675a0afbb721537
	// token: pg2_AWsFVGgQERITFBUWFxgZGhvQ9ajAKIh5DWZ1oK-7chU3
	// setup code: eyJ2IjoxLCJ1cmwiOiJ3c3M6Ly9nYXRld2F5LmV4YW1wbGUuY29tL3BhaXIiLCJ0b2tlbiI6InBnMl9BV3NGVkdnUUVSSVRGQlVXRnhnWkdodlE5YWpBS0loNURXWjFvSy03Y2hVMyIsImV4cGlyZXNfYXQiOiIyMDI2LTExLTI0VDA5OjEwOjAwWiJ9
	// public_key: A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg
	// device_id: 56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c
	// nonce: QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI
	// token sha256: 3574583c6fe3f9b3acbefb9bc3e9f65ac1441f478308b87281c99dc1b3d87900
	// pair string: "pairgate/v1/pair\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI\n56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c\n1795510800000\n3574583c6fe3f9b3acbefb9bc3e9f65ac1441f478308b87281c99dc1b3d87900"
	// pair signature: Ld56_IpRvOXEuYSC7F2EqOC0VFpePFBfpM3ywJzq7uFX0t3BYzynfUsnPKuH-li11MMb1z1Khq074Kvb-BxMCw
	// check_code: 522239
	// resume string: "pairgate/v1/resume\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI\ndreq_example\n56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c\n1795510800000"
	// resume signature: Nnzfi2G9EgxWFjsjT3JEtUaV9ZrnW3QdtUnG8v23ncHAO1z6crK6bild6RxBLlVkvLRnkzCNDhykdmU1PZYxBQ
	// auth string: "pairgate/v1/auth\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI\n56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c\n1795510800000"
	// auth signature: 8_-UVbiQSgGgqSc_tkvaxgLsUpdUPje8_OCWDLsWwoQvTueuwneOL6aG2HSsgWaP6PUe6QGTQAitP_SRAiT1Dg
}

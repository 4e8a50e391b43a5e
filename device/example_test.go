package device

import (
	"crypto/ed25519"
	"fmt"
	"strings"
)

// Example_signedStrings is the worked example of README.md: every value a
// device computes, from fixed inputs. Ed25519 signatures are deterministic,
// so another implementation must print exactly these lines.
func Example_signedStrings() {
	seed := make([]byte, ed25519.SeedSize) // 0x00, 0x01, … 0x1f
	for i := range seed {
		seed[i] = byte(i)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	nonce := b64url.EncodeToString([]byte(strings.Repeat("B", 32))) // from the server's challenge
	const (
		token     = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJpc3MiOiJwYWlyZ2F0ZSJ9.c2lnbmF0dXJl"
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
	show("pair", pairString(nonce, id, signedAt, token))
	fmt.Println("check_code:", CheckCode(nonce, id))
	show("resume", resumeString(nonce, requestID, id, signedAt))
	show("auth", authString(nonce, id, signedAt))
	// Output:
	// public_key: A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg
	// device_id: 56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c
	// nonce: QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI
	// pair string: "pairgate/v1/pair\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI\n56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c\n1795510800000\nc167b3f3266c78cbba1ab2f09db198a59e26095f811888dfc24af6492647711a"
	// pair signature: tPC-jcwCD8gMkfoWcON_KU9KWCTn14auvqMHIumtFo6qH1PM-XQDc4V1ThoBCbibC3ihe__fLVUtHSA-EZTNDQ
	// check_code: 522239
	// resume string: "pairgate/v1/resume\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI\ndreq_example\n56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c\n1795510800000"
	// resume signature: Nnzfi2G9EgxWFjsjT3JEtUaV9ZrnW3QdtUnG8v23ncHAO1z6crK6bild6RxBLlVkvLRnkzCNDhykdmU1PZYxBQ
	// auth string: "pairgate/v1/auth\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI\n56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c\n1795510800000"
	// auth signature: 8_-UVbiQSgGgqSc_tkvaxgLsUpdUPje8_OCWDLsWwoQvTueuwneOL6aG2HSsgWaP6PUe6QGTQAitP_SRAiT1Dg
}

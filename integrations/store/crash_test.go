package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sockembot/compliance"
)

// crashURLEnv tells the re-executed test binary to act as the crash-test child; crashKeyEnv
// passes it the evidence key (hex), the parent's, so the parent can verify what it wrote.
const (
	crashURLEnv = "SOCKEMBOT_STORE_CRASH_CHILD_URL"
	crashKeyEnv = "SOCKEMBOT_STORE_CRASH_CHILD_KEY"
)

// TestHelperProcess is the crash-test child: it appends from several goroutines as fast as it
// can and prints "seq hash subject" for each append once Append has returned, until killed.
func TestHelperProcess(t *testing.T) {
	u := os.Getenv(crashURLEnv)
	if u == "" {
		t.Skip("runs only as the child of a crash test")
	}
	key, err := hex.DecodeString(os.Getenv(crashKeyEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: bad key")
		os.Exit(2)
	}
	s, err := Open(context.Background(), u, WithKey(key))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				subject := fmt.Sprintf("crash-%d-%d", g, i)
				rec, err := s.Append(context.Background(), compliance.Evidence{Kind: compliance.EvidenceDeploymentStatus, Repo: "acme/pay", Subject: subject,
					Body: map[string]any{"state": "in_progress", "i": i}})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("%d %s %s\n", rec.Seq, rec.Hash, subject)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// testCrash SIGKILLs a process in the middle of a stream of appends, then checks that every
// append it acknowledged is in the store and the chain verifies.
func testCrash(t *testing.T, u string) {
	const acked = 150
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashURLEnv+"="+u, crashKeyEnv+"="+hex.EncodeToString(testKey))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct{ hash, subject string }
	acks := map[int64]ack{}
	sc := bufio.NewScanner(out)
	for len(acks) < acked && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue // the testing package's own output
		}
		seq, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		acks[seq] = ack{f[1], f[2]}
	}
	cmd.Process.Kill() // SIGKILL: no deferred cleanup, no flush, mid-transaction
	cmd.Wait()
	if len(acks) < acked {
		t.Fatalf("child acknowledged only %d appends before exiting: %s", len(acks), stderr.String())
	}

	s := openStore(t, u)
	ctx := context.Background()
	for seq, a := range acks {
		r, found, err := s.LastRecord(ctx, compliance.EvidenceDeploymentStatus, a.subject)
		if err != nil || !found || r.Seq != seq || r.Hash != a.hash {
			t.Errorf("acknowledged record %d (%s) after the crash: %+v found=%v err=%v", seq, a.subject, r, found, err)
		}
	}
	res, err := s.Verify(ctx)
	if err != nil || !res.OK || res.Checked < acked {
		t.Fatalf("Verify after the crash = %+v, %v", res, err)
	}
	// The store keeps working where the dead process left off.
	rec, err := s.Append(ctx, compliance.Evidence{Kind: compliance.EvidenceCheckRun, Subject: "after-crash"})
	if err != nil || rec.Seq != res.Checked+1 {
		t.Fatalf("append after the crash = %d, %v; want seq %d", rec.Seq, err, res.Checked+1)
	}
}

package juststorage_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestAPortIsClaimedOnceUntilItsClaimGoesStale(t *testing.T) {
	claims := t.TempDir()
	if !claimPort(claims, 20001) {
		t.Fatal("a fresh port was not claimed")
	}
	if claimPort(claims, 20001) {
		t.Fatal("a claimed port was handed out again")
	}
	old := time.Now().Add(-portClaimTTL - time.Minute)
	if err := os.Chtimes(filepath.Join(claims, "20001"), old, old); err != nil {
		t.Fatal(err)
	}
	if !claimPort(claims, 20001) {
		t.Fatal("a stale claim was not taken over")
	}
	if claimPort(claims, 20001) {
		t.Fatal("the taken-over claim was handed out again")
	}
}

func TestFreePortsAreInTheTestRangeAndNeverRepeat(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		port := freePort(t)
		if port < listenPortLow || port > listenPortHigh || seen[port] {
			t.Fatalf("port %d: out of range or handed out twice", port)
		}
		seen[port] = true
		if _, err := os.Stat(filepath.Join(os.TempDir(), "juststorage-test-ports", strconv.Itoa(port))); err != nil {
			t.Fatalf("port %d has no claim: %v", port, err)
		}
	}
}

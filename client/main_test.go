package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: neither the Stream's nor
// net/http's for a connection the Stream should have closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

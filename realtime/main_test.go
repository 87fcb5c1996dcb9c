package realtime

import (
	"testing"

	"go.uber.org/goleak"
)

// The session starts reader and writer goroutines; every test must leave
// none behind (style §1.7 rule 11).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package serve

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/diffsim/diffsim/api"
)

// TestAnotherBuildIsPassedOver: a client finds a server of another diffsim build (whose
// answers could differ) and is told so in one line naming both builds and the server's pid;
// the same build, or a server that does not say its build, is used.
func TestAnotherBuildIsPassedOver(t *testing.T) {
	unix, _, _ := startServer(t, Config{Version: "v1.2.3 abc"}, &fakes{byName: map[string]*fakeModel{}})
	_, err := api.Dial(context.Background(), unix.socket, "v1.2.4 def")
	if !errors.Is(err, api.ErrOtherVersion) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "v1.2.3 abc") || !strings.Contains(err.Error(), "v1.2.4 def") || !strings.Contains(err.Error(), "pid ") {
		t.Errorf("Dial with another build: %v, want one line with ErrOtherVersion naming both builds and the pid", err)
	}
	info, err := api.Probe(context.Background(), unix.socket, "v1.2.4 def")
	if info.Version != "v1.2.3 abc" || info.PID <= 0 || !errors.Is(err, api.ErrOtherVersion) {
		t.Errorf("Probe: %+v, %v; want the server's build and pid, and why it is not used", info, err)
	}
	for _, v := range []string{"v1.2.3 abc", ""} {
		if _, err := api.Dial(context.Background(), unix.socket, v); err != nil {
			t.Errorf("Dial with build %q: %v", v, err)
		}
	}
}

package cli

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDoctorListsTheServer: doctor names the server commands would use, by the pid the kernel
// reports for its socket, and its socket.
func TestDoctorListsTheServer(t *testing.T) {
	startTestServer(t)
	_, out, _ := runCmd(t, "doctor")
	want := fmt.Sprintf("server      pid %d, ", os.Getpid())
	if !strings.Contains(out, want) || !strings.Contains(out, "on "+os.Getenv("DIFFSIM_SOCKET")) {
		t.Errorf("doctor does not list the server (want %q and the socket):\n%s", want, out)
	}
	if strings.Contains(out, "not used") {
		t.Errorf("doctor says the server is not used:\n%s", out)
	}
}

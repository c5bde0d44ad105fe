//go:build linux && cgo

// Package slurm holds the Slurm example job scripts; its test runs them on a real single-node
// Slurm cluster (Debian's slurmctld, slurmd and munge), started and stopped by the test.
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/diffsim/diffsim/features/imagefile"
)

// The Debian packages the test needs, and a program from each that proves it is installed.
var slurmPackages = map[string]string{
	"munge":        "munged",
	"slurmctld":    "slurmctld",
	"slurmd":       "slurmd",
	"slurm-client": "sbatch",
}

// benchFlags keep the run small: 48 decisions on 48 px images, at 64 px in the built-in model.
var benchFlags = []string{"--size", "64", "--t", "300", "--layer", "coarse"}

// TestArrayJobKillResumeMerge submits examples/slurm/bench.sbatch as a 4-task array on the
// built-in model and the merge job chained after it with --dependency=afterok, kills task 1
// (scancel) while it runs, resubmits it (scontrol requeue) and recovers the merge's dependency
// as bench.sbatch tells users to, and checks that the rerun resumed rather than restarted, and
// that the merged results are byte for byte those of one process running the whole benchmark.
func TestArrayJobKillResumeMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster (about 30 s); not with -short")
	}
	requireSlurm(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	tmp := t.TempDir()
	// munged wants every folder above its socket searchable by all (TempDir makes them 0700)
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(tmp, "diffsim")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/diffsim/diffsim").CombinedOutput(); err != nil {
		t.Fatalf("go build diffsim: %v\n%s", err, out)
	}
	data := tripletData(t, filepath.Join(tmp, "data"))

	// What the shards must add up to: one process, the whole benchmark.
	single := filepath.Join(tmp, "single.jsonl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench", "triplet", data, "--out", single, "--quiet"}, benchFlags...)...)
	cmd.Env = withoutSlurmEnv()
	wantSummary, err := cmd.Output()
	if err != nil {
		t.Fatalf("single-process run: %v\n%s", err, stderrOf(err))
	}
	want, err := os.ReadFile(single)
	if err != nil || bytes.Count(want, []byte("\n")) != 48 {
		t.Fatalf("single-process run wrote %d decisions (%v), want 48", bytes.Count(want, []byte("\n")), err)
	}

	c := startCluster(ctx, t, filepath.Join(tmp, "cluster"))
	c.env = append(c.env, "DIFFSIM="+bin)

	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(work, "results")
	script, _ := filepath.Abs("bench.sbatch")
	mergeScript, _ := filepath.Abs("merge.sbatch")
	jid := c.run(ctx, t, work, "sbatch", append([]string{"--parsable", "--array=0-3", script, "triplet", data, results + "/"}, benchFlags...)...)
	merged := filepath.Join(work, "merged.jsonl")
	mid := c.run(ctx, t, work, "sbatch", "--parsable", "--dependency=afterok:"+jid, mergeScript, results+"/", merged)

	// Catch task 1 with some of its 12 decisions made, then kill it and queue it again.
	shard1 := filepath.Join(results, "shard-1-of-4.jsonl")
	log1 := filepath.Join(work, fmt.Sprintf("diffsim-bench-%s_1.out", jid))
	pid := c.waitPID(ctx, t, bin, jid, "1")
	made := catchMidRun(ctx, t, pid, log1, shard1, 12)
	c.run(ctx, t, work, "scancel", jid+"_1")
	_ = syscall.Kill(pid, syscall.SIGCONT) // let it hear Slurm's SIGTERM
	waitFor(ctx, t, time.Minute, "killed task 1 to exit", func() bool { return syscall.Kill(pid, 0) != nil })
	if st := c.waitJob(ctx, t, jid+"_1", time.Minute); st != "CANCELLED" {
		t.Fatalf("task 1 after scancel: %s, want CANCELLED", st)
	}
	// Slurm now holds the merge for good, even once the task reruns (bench.sbatch says so and
	// how to recover): rerun the task, and name the tasks in the merge's dependency.
	if st := c.waitJob(ctx, t, mid, 30*time.Second); st != "DependencyNeverSatisfied" {
		t.Errorf("merge job after a task was cancelled: %s, want DependencyNeverSatisfied", st)
	}
	c.run(ctx, t, work, "scontrol", "requeue", jid+"_1")
	tasks := make([]string, 4)
	for i := range tasks {
		tasks[i] = fmt.Sprintf("%s_%d", jid, i)
	}
	c.run(ctx, t, work, "scontrol", "update", "jobid="+mid, "dependency=afterok:"+strings.Join(tasks, ":"))
	t.Logf("task 1 killed with %d of its 12 decisions made, and requeued", made)
	defer func() {
		if t.Failed() {
			t.Logf("task 1's log:\n%s", readFile(t, log1))
		}
	}()

	state := c.waitJob(ctx, t, mid, 2*time.Minute)
	logs := readLogs(t, work)
	if state != "COMPLETED" {
		t.Fatalf("merge job %s ended %s\n%s", mid, state, logs)
	}
	for i, task := range tasks {
		if st := c.jobState(ctx, t, task); st != "COMPLETED" {
			t.Errorf("task %s: %s", task, st)
		}
		from := fmt.Sprintf("shard %d/4 from the Slurm array (SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_COUNT=4)", i, i)
		if l := readFile(t, filepath.Join(work, fmt.Sprintf("diffsim-bench-%s.out", task))); !strings.Contains(l, from) {
			t.Errorf("task %s's log does not say %q:\n%s", task, from, l)
		}
	}
	l1 := readFile(t, log1)
	if !strings.Contains(l1, "run the same command again to resume") {
		t.Errorf("killed task 1's log does not say it can resume:\n%s", l1)
	}
	if !strings.Contains(l1, " already in "+shard1+", ") {
		t.Errorf("requeued task 1 did not resume from %s:\n%s", shard1, l1)
	}
	got, err := os.ReadFile(merged)
	if err != nil {
		t.Fatalf("the merge job wrote no %s: %v\n%s", merged, err, logs)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("merged results (%d bytes) differ from the single-process run's (%d bytes)\n%s", len(got), len(want), logs)
	}
	mergeLog := readFile(t, filepath.Join(work, "diffsim-merge-"+mid+".out"))
	if !strings.Contains(mergeLog, string(wantSummary)) {
		t.Errorf("the merge job's summary differs from the single run's:\n%s\nwant\n%s", mergeLog, wantSummary)
	}
}

// requireSlurm skips (fails in CI) where the packages, root, or the sample photos are missing.
func requireSlurm(t *testing.T) {
	t.Helper()
	unavailable := t.Skipf
	if os.Getenv("CI") != "" {
		unavailable = t.Fatalf
	}
	// the daemons live in /usr/sbin, which a non-login PATH may lack
	t.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+"/usr/sbin")
	var missing []string
	for pkg, prog := range slurmPackages {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, pkg)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		unavailable("Slurm test: missing Debian packages %s (apt-get install slurmctld slurmd slurm-client munge; scripts/test.sh installs them in CI)", strings.Join(missing, " "))
	}
	if os.Geteuid() != 0 {
		unavailable("Slurm test: slurmd must run as root to start jobs; run the test as root")
	}
}

// cluster is a running single-node Slurm: its config and the environment its commands need.
type cluster struct {
	dir string
	env []string
}

func (c *cluster) command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = c.env
	return cmd
}

// run runs a Slurm command and returns its trimmed output; a failure ends the test.
func (c *cluster) run(ctx context.Context, t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := c.command(ctx, dir, name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderrOf(err))
	}
	return strings.TrimSpace(string(out))
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// startCluster writes a slurm.conf for one node on localhost, starts munged, slurmctld and
// slurmd in the foreground as the test's children, and stops them (and any job left) at the
// end of the test.
func startCluster(ctx context.Context, t *testing.T, dir string) *cluster {
	t.Helper()
	for _, d := range []string{"state", "spool", "log", "munge", "key"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, 1024)
	if f, err := os.Open("/dev/urandom"); err == nil {
		_, err = f.Read(key)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "key"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key", "munge.key"), key, 0o400); err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	// Four GPUs for four tasks: gres.conf wants device files; empty files serve (slurmd logs
	// that they are not devices, and counts them).
	var gpus []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("gpu%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		gpus = append(gpus, p)
	}
	conf := filepath.Join(dir, "slurm.conf")
	p := func(name string) string { return filepath.Join(dir, name) }
	ports := freePorts(t, 2)
	text := fmt.Sprintf(`ClusterName=diffsimtest
SlurmctldHost=%[1]s(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=%[2]d
SlurmdPort=%[3]d
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=%[4]s,cred_expire=5
StateSaveLocation=%[5]s
SlurmdSpoolDir=%[6]s
SlurmctldPidFile=%[7]s
SlurmdPidFile=%[8]s
SlurmctldLogFile=%[9]s
SlurmdLogFile=%[10]s
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
# the node offers what the example asks (4 CPUs and a GPU per task) whatever this machine has
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=600
GresTypes=gpu
NodeName=%[1]s NodeAddr=127.0.0.1 CPUs=16 RealMemory=16384 Gres=gpu:4 State=UNKNOWN
PartitionName=test Nodes=%[1]s Default=YES MaxTime=INFINITE State=UP
`, host, ports[0], ports[1], p("munge/munge.sock"), p("state"), p("spool"), p("slurmctld.pid"), p("slurmd.pid"), p("log/slurmctld.log"), p("log/slurmd.log"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	gres := fmt.Sprintf("NodeName=%s Name=gpu File=%s\n", host, strings.Join(gpus, ","))
	if err := os.WriteFile(p("gres.conf"), []byte(gres), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cluster{dir: dir, env: append(withoutSlurmEnv(), "SLURM_CONF="+conf)}

	start := func(name string, args ...string) {
		log, err := os.Create(p("log/" + name + ".out"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(name, args...)
		cmd.Env = c.env
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			log.Close()
		})
	}
	start("munged", "--foreground", "--socket="+p("munge/munge.sock"), "--key-file="+p("key/munge.key"),
		"--pid-file="+p("munge/munged.pid"), "--log-file="+p("log/munged.log"), "--seed-file="+p("munge/seed"))
	if !poll(ctx, 10*time.Second, func() bool { _, err := os.Stat(p("munge/munge.sock")); return err == nil }) {
		b, _ := os.ReadFile(p("log/munged.out"))
		t.Fatalf("munged did not start:\n%s", b)
	}
	start("slurmctld", "-D", "-i", "-f", conf)
	start("slurmd", "-D", "-N", host, "-f", conf)
	// Jobs first, daemons after (cleanups run last-registered first): nothing outlives the test.
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.command(stop, dir, "scancel", "--user=root").Run()
		poll(stop, 15*time.Second, func() bool {
			out, err := c.command(stop, dir, "squeue", "--noheader", "--states=RUNNING,COMPLETING").Output()
			return err != nil || len(bytes.TrimSpace(out)) == 0
		})
		if t.Failed() {
			for _, f := range []string{"slurmctld.log", "slurmd.log"} {
				if b, err := os.ReadFile(p("log/" + f)); err == nil {
					t.Logf("%s (end):\n%s", f, tail(string(b), 3000))
				}
			}
		}
	})
	waitFor(ctx, t, 30*time.Second, "the node to be idle", func() bool {
		out, err := c.command(ctx, dir, "sinfo", "--noheader", "--format=%T").Output()
		return err == nil && strings.TrimSpace(string(out)) == "idle"
	})
	return c
}

// withoutSlurmEnv is the test's environment less any Slurm variables (the test may itself run
// inside a Slurm job, whose settings must not leak into this cluster's jobs).
func withoutSlurmEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLURM_") && !strings.HasPrefix(kv, "SBATCH_") && !strings.HasPrefix(kv, "DIFFSIM_SHARDS=") && !strings.HasPrefix(kv, "JOB_COMPLETION_INDEX=") {
			env = append(env, kv)
		}
	}
	return env
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// waitFor polls ok until it holds, and ends the test if it does not within limit.
func waitFor(ctx context.Context, t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	if !poll(ctx, limit, ok) {
		t.Fatalf("gave up waiting %s for %s", limit, what)
	}
}

// poll reports whether ok came to hold within limit.
func poll(ctx context.Context, limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func (c *cluster) jobState(ctx context.Context, t *testing.T, job string) string {
	out, err := c.command(ctx, c.dir, "scontrol", "show", "job", job).Output()
	if err != nil {
		return "UNKNOWN"
	}
	_, after, ok := strings.Cut(string(out), "JobState=")
	if !ok {
		return "UNKNOWN"
	}
	state, _, _ := strings.Cut(after, " ")
	return state
}

// waitJob waits for a job to end and returns its final state.
func (c *cluster) waitJob(ctx context.Context, t *testing.T, job string, limit time.Duration) string {
	var state string
	waitFor(ctx, t, limit, "job "+job+" to end", func() bool {
		state = c.jobState(ctx, t, job)
		switch state {
		case "PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED":
			if state == "PENDING" && strings.Contains(c.run(ctx, t, c.dir, "scontrol", "show", "job", job), "DependencyNeverSatisfied") {
				state = "DependencyNeverSatisfied"
				return true
			}
			return false
		}
		return true
	})
	return state
}

// waitPID finds the diffsim process of an array task: bench.sbatch execs it, so it is the
// batch job's own process, with the task's variables in its environment.
func (c *cluster) waitPID(ctx context.Context, t *testing.T, bin, job, task string) int {
	var pid int
	waitFor(ctx, t, time.Minute, "task "+job+"_"+task+" to start diffsim", func() bool {
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			if exe, err := os.Readlink(p + "/exe"); err != nil || exe != bin {
				continue
			}
			env, err := os.ReadFile(p + "/environ")
			if err != nil {
				continue
			}
			vars := "\x00" + string(env)
			if strings.Contains(vars, "\x00SLURM_ARRAY_JOB_ID="+job+"\x00") && strings.Contains(vars, "\x00SLURM_ARRAY_TASK_ID="+task+"\x00") {
				pid, _ = strconv.Atoi(filepath.Base(p))
				return true
			}
		}
		return false
	})
	return pid
}

// catchMidRun stops the process once it has made at least one of its decisions and before it
// has made them all: it lets the process run until its log says the decisions start, then
// alternates SIGCONT and SIGSTOP in 2 ms slices, far shorter than a decision, until the shard
// file has a line. It returns the decisions made, the process left stopped.
func catchMidRun(ctx context.Context, t *testing.T, pid int, log, shard string, total int) int {
	t.Helper()
	waitFor(ctx, t, time.Minute, "task 1 to start its decisions", func() bool {
		b, _ := os.ReadFile(log)
		return bytes.Contains(b, []byte(" in shard 1/4"))
	})
	made := 0
	for step := 0; made == 0; step++ {
		if step > 0 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			time.Sleep(2 * time.Millisecond)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("task 1 (pid %d) ended before it could be stopped: %v", pid, err)
		}
		waitFor(ctx, t, 5*time.Second, "task 1 to stop", func() bool {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				return true
			}
			_, after, _ := strings.Cut(string(stat), ") ")
			return strings.HasPrefix(after, "T")
		})
		b, _ := os.ReadFile(shard)
		made = bytes.Count(b, []byte("\n"))
		if step > 20000 {
			t.Fatal("task 1 made no decision in 20000 slices")
		}
	}
	if made >= total {
		t.Fatalf("task 1 made all %d decisions before it could be stopped; the test needs more decisions per shard", total)
	}
	return made
}

// tripletData writes 4 classes of 4 crops of a sample photograph each, 48 × 48 px.
func tripletData(t *testing.T, dir string) string {
	t.Helper()
	for _, name := range []string{"grass", "gravel", "brick", "coffee"} {
		img, _, err := imagefile.Load(context.Background(), filepath.Join("..", "..", "testdata", "samples", name+".png"), imagefile.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		for i := range 4 {
			crop := image.NewRGBA(image.Rect(0, 0, 48, 48))
			off := image.Pt(b.Dx()*i/16, b.Dy()*i/20)
			src := image.Rectangle{b.Min.Add(off), b.Min.Add(off).Add(image.Pt(b.Dx()*3/4, b.Dy()*3/4))}
			draw.CatmullRom.Scale(crop, crop.Rect, img, src, draw.Src, nil)
			var buf bytes.Buffer
			if err := png.Encode(&buf, crop); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name, fmt.Sprintf("v%d.png", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("read %s: %v", p, err)
	}
	return string(b)
}

// readLogs gathers every job's output file, for failure messages.
func readLogs(t *testing.T, dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.out"))
	var sb strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(&sb, "== %s\n%s", filepath.Base(f), b)
	}
	return sb.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// gridFlags make bench a grid: every layer of the built-in model at two timesteps and two
// metrics, 12 cells from one forward per image and timestep.
var gridFlags = []string{"--size", "64", "--layers", "all", "--t", "50,300", "--metric", "aas,mse"}

// TestGridArrayMerge submits bench.sbatch with a grid as a 3-task array and merge.sbatch after
// it: the merged grid results are byte for byte those of one process, and the merge job prints
// the single run's report.
func TestGridArrayMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster (about 20 s); not with -short")
	}
	requireSlurm(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(tmp, "diffsim")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/diffsim/diffsim").CombinedOutput(); err != nil {
		t.Fatalf("go build diffsim: %v\n%s", err, out)
	}
	data := tripletData(t, filepath.Join(tmp, "data"))
	single := filepath.Join(tmp, "single.jsonl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench", "triplet", data, "--out", single, "--quiet"}, gridFlags...)...)
	cmd.Env = withoutSlurmEnv()
	wantReport, err := cmd.Output()
	if err != nil {
		t.Fatalf("single-process grid: %v\n%s", err, stderrOf(err))
	}
	want, err := os.ReadFile(single)
	if err != nil || bytes.Count(want, []byte("\n")) != 1+48*2 {
		t.Fatalf("single-process grid wrote %d lines (%v), want the settings and 48 decisions × 2 timesteps", bytes.Count(want, []byte("\n")), err)
	}

	c := startCluster(ctx, t, filepath.Join(tmp, "cluster"))
	c.env = append(c.env, "DIFFSIM="+bin)
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(work, "results")
	script, _ := filepath.Abs("bench.sbatch")
	mergeScript, _ := filepath.Abs("merge.sbatch")
	jid := c.run(ctx, t, work, "sbatch", append([]string{"--parsable", "--array=0-2", script, "triplet", data, results + "/"}, gridFlags...)...)
	merged := filepath.Join(work, "merged.jsonl")
	mid := c.run(ctx, t, work, "sbatch", "--parsable", "--dependency=afterok:"+jid, mergeScript, results+"/", merged)
	if state := c.waitJob(ctx, t, mid, 3*time.Minute); state != "COMPLETED" {
		t.Fatalf("merge job %s ended %s\n%s", mid, state, readLogs(t, work))
	}
	got, err := os.ReadFile(merged)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("merged grid results (%d bytes, %v) differ from the single-process run's (%d bytes)\n%s", len(got), err, len(want), readLogs(t, work))
	}
	if log := readFile(t, filepath.Join(work, "diffsim-merge-"+mid+".out")); !strings.Contains(log, string(wantReport)) {
		t.Errorf("the merge job's report differs from the single run's:\n%s\nwant\n%s", log, wantReport)
	}
}

// Package k8s holds the Kubernetes example manifests; its test decodes them into the
// Kubernetes API's own types, since no cluster runs where the tests do.
package k8s

import (
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decodeJob reads a manifest strictly: a field the API does not know (a typo, a field at the
// wrong level) is an error, as `kubectl apply --validate=strict` would make it.
func decodeJob(t *testing.T, file string) *batchv1.Job {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(data, &job); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if job.APIVersion != "batch/v1" || job.Kind != "Job" {
		t.Fatalf("%s: %s %s, want batch/v1 Job", file, job.APIVersion, job.Kind)
	}
	if len(job.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", file, len(job.Spec.Template.Spec.Containers))
	}
	return &job
}

// flagValue returns the value after flag in args, and whether it is there.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// mountedAt reports whether p lies under one of the container's volume mounts, and which.
func mountedAt(c corev1.Container, p string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if path.Clean(p) == path.Clean(m.MountPath) || strings.HasPrefix(path.Clean(p), path.Clean(m.MountPath)+"/") {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func TestBenchJobIsAnIndexedJobOfOneShardPerPod(t *testing.T) {
	job := decodeJob(t, "bench-job.yaml")
	spec := job.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode %v, want Indexed (pods get JOB_COMPLETION_INDEX)", spec.CompletionMode)
	}
	if spec.Completions == nil || *spec.Completions < 2 {
		t.Fatalf("completions %v, want a shard count of at least 2", spec.Completions)
	}
	n := int(*spec.Completions)
	c := spec.Template.Spec.Containers[0]
	args := append(slices.Clone(c.Command), c.Args...)
	if len(args) < 4 || path.Base(args[0]) != "diffsim" || args[1] != "bench" {
		t.Fatalf("command %q, want diffsim bench LAYOUT PATH …", args)
	}
	if !slices.Contains([]string{"triplet", "2afc", "nights", "tid2013"}, args[2]) {
		t.Errorf("layout %q is not one bench knows", args[2])
	}
	if m, ok := mountedAt(c, args[3]); !ok || !m.ReadOnly {
		t.Errorf("the data %s is not on a read-only volume mount (%v)", args[3], c.VolumeMounts)
	}
	shards, ok := flagValue(args, "--shards")
	if got, err := strconv.Atoi(shards); !ok || err != nil || got != n {
		t.Errorf("--shards %q, want the Job's completions, %d: pod I makes shard I of completions", shards, n)
	}
	if slices.Contains(args, "--shard") {
		t.Error("--shard would give every pod the same shard; the index must come from JOB_COMPLETION_INDEX")
	}
	out, ok := flagValue(args, "--out")
	if !ok || !strings.HasSuffix(out, "/") {
		t.Fatalf("--out %q, want a results folder (a trailing slash): one file per shard", out)
	}
	m, ok := mountedAt(c, out)
	if !ok || m.ReadOnly {
		t.Fatalf("results %s are not on a writable volume mount (%v)", out, c.VolumeMounts)
	}
	var vol *corev1.Volume
	for i := range spec.Template.Spec.Volumes {
		if spec.Template.Spec.Volumes[i].Name == m.Name {
			vol = &spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.PersistentVolumeClaim == nil {
		t.Errorf("results volume %q is not a persistent volume claim: the shards would vanish with their pods", m.Name)
	}
	if gpu := c.Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]; gpu.Value() != 1 {
		t.Errorf("nvidia.com/gpu limit %v, want one GPU per pod", gpu.String())
	}
	if p := spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q: a Job needs Never or OnFailure", p)
	}

	merge := decodeJob(t, "merge-job.yaml")
	mc := merge.Spec.Template.Spec.Containers[0]
	margs := append(slices.Clone(mc.Command), mc.Args...)
	if len(margs) < 4 || path.Base(margs[0]) != "diffsim" || margs[1] != "bench" || margs[2] != "merge" || path.Clean(margs[3]) != path.Clean(out) {
		t.Errorf("merge command %q, want diffsim bench merge %s", margs, out)
	}
	if mm, ok := mountedAt(mc, margs[3]); !ok || mm.Name != m.Name {
		t.Errorf("the merge job does not mount the results volume %q at %s", m.Name, margs[3])
	}
	if merged, ok := flagValue(margs, "--out"); !ok || strings.HasPrefix(path.Base(merged), "shard-") {
		t.Errorf("merge --out %q: want a file that is not named like a shard", merged)
	}
}

// The checks above mean something only if a mistake in a manifest fails them.
func TestStrictDecodingRefusesMistakes(t *testing.T) {
	data, err := os.ReadFile("bench-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"unknown field":    strings.Replace(string(data), "  completions: 8\n", "  completions: 8\n  completion: 8\n", 1),
		"field misplaced":  strings.Replace(string(data), "  parallelism: 8\n", "  parallelism: 8\n  restartPolicy: Never\n", 1),
		"wrong value type": strings.Replace(string(data), "  completions: 8\n", "  completions: eight\n", 1),
	} {
		if bad == string(data) {
			t.Fatalf("%s: the manifest changed; this test no longer edits it", name)
		}
		var job batchv1.Job
		if err := yaml.UnmarshalStrict([]byte(bad), &job); err == nil {
			t.Errorf("%s: a manifest with it decodes without error", name)
		}
	}
}

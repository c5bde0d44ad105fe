package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ShardsVar is the environment variable that gives the shard count where the engine does not
// (a Kubernetes Indexed Job sets only JOB_COMPLETION_INDEX); --shards overrides it.
const ShardsVar = "DIFFSIM_SHARDS"

// FromEnv finds this task's shard in a batch engine's environment. shards is the count the
// user gave (--shards or $DIFFSIM_SHARDS; 0 when neither): with it, the engine's task index is
// the shard index as is, so a rerun of one task (sbatch --array=2) keeps its shard. Without it,
// a Slurm array must be numbered 0..N-1 and N comes from SLURM_ARRAY_TASK_COUNT (or
// SLURM_ARRAY_TASK_MIN/MAX). from says which variables were used, for one line on stderr; ok
// is false when no engine index is set.
func FromEnv(getenv func(string) string, shards int) (sh Shard, from string, ok bool, err error) {
	if shards < 0 {
		return Shard{}, "", false, fmt.Errorf("--shards %d: want a positive shard count", shards)
	}
	if id := getenv("SLURM_ARRAY_TASK_ID"); id != "" {
		sh, from, err := slurmShard(getenv, id, shards)
		return sh, from, err == nil, err
	}
	if id := getenv("JOB_COMPLETION_INDEX"); id != "" {
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 {
			return Shard{}, "", false, fmt.Errorf("JOB_COMPLETION_INDEX=%q is not a task index", id)
		}
		if shards == 0 {
			return Shard{}, "", false, fmt.Errorf("Kubernetes Indexed Job task %d: give the shard count (the Job's completions) with --shards N or $%s", i, ShardsVar)
		}
		sh := Shard{i, shards}
		if i >= shards {
			return Shard{}, "", false, fmt.Errorf("JOB_COMPLETION_INDEX=%d is not below --shards %d: the Job's completions and --shards must agree", i, shards)
		}
		return sh, fmt.Sprintf("Kubernetes Indexed Job (JOB_COMPLETION_INDEX=%d, --shards %d)", i, shards), true, nil
	}
	if shards > 1 {
		return Shard{}, "", false, fmt.Errorf("--shards %d needs this task's index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX; outside a Slurm array or an Indexed Job give --shard I/N", shards)
	}
	return All, "", false, nil
}

func slurmShard(getenv func(string) string, id string, shards int) (Shard, string, error) {
	num := func(name string) (int, bool, error) {
		v := getenv(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("%s=%q is not a non-negative number", name, v)
		}
		return n, true, nil
	}
	i, _, err := num("SLURM_ARRAY_TASK_ID")
	if err != nil {
		return Shard{}, "", err
	}
	if shards > 0 {
		if i >= shards {
			return Shard{}, "", fmt.Errorf("SLURM_ARRAY_TASK_ID=%d is not below --shards %d: number the array 0..%d", i, shards, shards-1)
		}
		return Shard{i, shards}, fmt.Sprintf("Slurm array (SLURM_ARRAY_TASK_ID=%d, --shards %d)", i, shards), nil
	}
	count, hasCount, err := num("SLURM_ARRAY_TASK_COUNT")
	if err != nil {
		return Shard{}, "", err
	}
	lo, hasMin, err := num("SLURM_ARRAY_TASK_MIN")
	if err != nil {
		return Shard{}, "", err
	}
	hi, hasMax, err := num("SLURM_ARRAY_TASK_MAX")
	if err != nil {
		return Shard{}, "", err
	}
	if hasMin && lo != 0 {
		return Shard{}, "", fmt.Errorf("Slurm array %d-%d: diffsim numbers shards from 0; submit with --array=0-%d, or give --shards N to use task IDs as shard indices", lo, hi, hi-lo)
	}
	var from string
	switch {
	case hasCount:
		if hasMax && hi != count-1 {
			// --array=0-15:2 or 0,2,5: task IDs are not the shard indices 0..N-1.
			return Shard{}, "", fmt.Errorf("Slurm array with task IDs up to %d but %d tasks (a step or a list with gaps): give --shards N and number the array 0..N-1", hi, count)
		}
		from = fmt.Sprintf("Slurm array (SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_COUNT=%d)", i, count)
	case hasMax:
		count = hi + 1
		from = fmt.Sprintf("Slurm array (SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_MAX=%d)", i, hi)
	default:
		return Shard{}, "", fmt.Errorf("SLURM_ARRAY_TASK_ID=%d without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX: give --shards N", i)
	}
	if i >= count {
		return Shard{}, "", fmt.Errorf("SLURM_ARRAY_TASK_ID=%d is not below the array's %d tasks", i, count)
	}
	return Shard{i, count}, from, nil
}

// IsDirOut reports whether --out names a folder of shard files: it ends in a slash or is an
// existing folder.
func IsDirOut(out string) bool {
	if strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(filepath.Separator)) {
		return true
	}
	fi, err := os.Stat(out)
	return err == nil && fi.IsDir()
}

// FileName is shard sh's results file in a results folder: shard-I-of-N.jsonl, I padded to
// N's width so a listing sorts in shard order.
func FileName(sh Shard) string {
	w := len(strconv.Itoa(sh.N))
	return fmt.Sprintf("shard-%0*d-of-%d.jsonl", w, sh.I, sh.N)
}

var shardFileRE = regexp.MustCompile(`^shard-([0-9]+)-of-([0-9]+)\.jsonl$`)

// ParseFileName reads the shard from a results file name made by FileName.
func ParseFileName(name string) (Shard, bool) {
	m := shardFileRE.FindStringSubmatch(filepath.Base(name))
	if m == nil {
		return Shard{}, false
	}
	i, err1 := strconv.Atoi(m[1])
	n, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || n < 1 || i >= n {
		return Shard{}, false
	}
	return Shard{i, n}, true
}

// ShardFile is one shard's results file in a results folder.
type ShardFile struct {
	Shard Shard
	Path  string
}

// ListDir finds the shard files of a results folder and checks they make one split: one
// shard count, no shard twice. Missing shards are returned, not an error, so that status can
// show them; merge refuses them.
func ListDir(dir string) (files []ShardFile, missing []int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	byIndex := map[int]string{}
	n := 0
	for _, e := range entries {
		sh, ok := ParseFileName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if n != 0 && sh.N != n {
			return nil, nil, fmt.Errorf("%w: %s holds shards of a %d-way and a %d-way split (%s); keep one split per folder", ErrMismatch, dir, n, sh.N, e.Name())
		}
		n = sh.N
		if prev, dup := byIndex[sh.I]; dup {
			return nil, nil, fmt.Errorf("%w: shard %s is in %s twice (%s and %s); remove one", ErrMismatch, sh, dir, filepath.Base(prev), e.Name())
		}
		byIndex[sh.I] = p
		files = append(files, ShardFile{sh, p})
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: %s holds no shard files (shard-I-of-N.jsonl, as bench --out %s/ writes)", ErrMismatch, dir, strings.TrimSuffix(dir, "/"))
	}
	for i := range n {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, i)
		}
	}
	slices.SortFunc(files, func(a, b ShardFile) int { return a.Shard.I - b.Shard.I })
	return files, missing, nil
}

// Size is the number of decisions of a total-decision benchmark that fall in the shard.
func (s Shard) Size(total int) int {
	if s.N <= 1 {
		return total
	}
	if total <= s.I {
		return 0
	}
	return (total-s.I-1)/s.N + 1
}

// CheckSplit refuses to add shard sh to a results folder that holds shards of another split:
// a rerun of one Slurm array task (sbatch --array=2) without --shards would otherwise see an
// array of one task and write the whole benchmark as shard 0/1 beside the others.
func CheckSplit(dir string, sh Shard, from string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if other, ok := ParseFileName(e.Name()); ok && other.N != sh.N {
			how := ""
			if from != "" {
				how = " (from " + from + ")"
			}
			return fmt.Errorf("%w: %s holds a %d-way split (%s) but this task is shard %s%s; to rerun one shard give --shards %d, or use another folder", ErrMismatch, dir, other.N, e.Name(), sh, how, other.N)
		}
	}
	return nil
}

package video

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// ErrNoFFmpeg is wrapped when a video file needs ffmpeg and none is installed.
var ErrNoFFmpeg = errors.New("ffmpeg is not installed")

// maxFrameBytes bounds one decoded frame's PNG: a corrupt stream must not claim all memory.
const maxFrameBytes = 1 << 30

// FFmpegSource decodes a video file with ffmpeg, which writes the kept frames as a stream of
// PNG files on its standard output; frames are read one at a time as scoring asks for them.
type FFmpegSource struct {
	path   string
	every  int
	total  int
	cancel context.CancelFunc
	cmd    *exec.Cmd
	out    *bufio.Reader
	stderr *tail
	n      int  // frames read so far
	eof    bool // ffmpeg has written its last frame and exited cleanly

	closeOnce sync.Once
	closeErr  error
}

// OpenFFmpeg starts ffmpeg on a video file and waits for its first frame, so that a file
// ffmpeg cannot read fails here, with ffmpeg's reason.
func OpenFFmpeg(ctx context.Context, path string, o Options) (*FFmpegSource, error) {
	prog := o.FFmpeg
	if prog == "" {
		prog = "ffmpeg"
	}
	bin, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("%s: decoding a video file needs ffmpeg: %w (install the Debian/Ubuntu package ffmpeg: sudo apt-get install ffmpeg), or give a folder of frames", path, ErrNoFFmpeg)
	}
	// ffmpeg 5.1 replaced -vsync with -fps_mode; older builds know only the first.
	s, err := startFFmpeg(ctx, bin, path, o, "-fps_mode")
	if err != nil && s != nil && strings.Contains(s.stderr.String(), "fps_mode") {
		s, err = startFFmpeg(ctx, bin, path, o, "-vsync")
	}
	if err != nil {
		return nil, err
	}
	s.total = probeFrames(ctx, bin, path, o)
	return s, nil
}

// startFFmpeg starts ffmpeg and waits for its first frame. When ffmpeg fails it returns the
// error and, if ffmpeg ran, the stopped source, whose stderr says why.
func startFFmpeg(ctx context.Context, bin, path string, o Options, fpsFlag string) (*FFmpegSource, error) {
	// "file:" keeps a name such as "http:x.mp4" or "-x.mp4" a local file name.
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-i", "file:" + path, "-map", "0:v:0"}
	if o.every() > 1 {
		args = append(args, "-vf", fmt.Sprintf(`select=not(mod(n\,%d))`, o.every()))
	}
	// Passthrough: each decoded frame once, never duplicated to fill a constant frame rate.
	args = append(args, fpsFlag, "passthrough")
	if o.MaxFrames > 0 {
		args = append(args, "-frames:v", strconv.Itoa(o.MaxFrames))
	}
	args = append(args, "-f", "image2pipe", "-vcodec", "png", "-compression_level", "1", "-")

	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	s := &FFmpegSource{path: path, every: o.every(), cancel: cancel, cmd: cmd, stderr: &tail{max: 4 << 10}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("%s: start ffmpeg: %w", path, err)
	}
	s.out = bufio.NewReaderSize(stdout, 1<<20)
	if _, err := s.out.Peek(1); err != nil {
		err = errors.Join(s.wait(), err)
		cancel()
		if parent.Err() != nil {
			return nil, parent.Err()
		}
		return s, badInput(fmt.Errorf("%s: ffmpeg decoded no frames: %s", path, s.reason(err)))
	}
	return s, nil
}

// Next reads the next kept frame.
func (s *FFmpegSource) Next(ctx context.Context) (Frame, error) {
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if s.eof {
		return Frame{}, io.EOF
	}
	data, err := ReadPNG(s.out, maxFrameBytes)
	if errors.Is(err, io.EOF) {
		if werr := s.wait(); werr != nil {
			if ctx.Err() != nil {
				return Frame{}, ctx.Err()
			}
			return Frame{}, fmt.Errorf("%s: ffmpeg stopped after %d frames: %s", s.path, s.n, s.reason(werr))
		}
		s.eof = true
		return Frame{}, io.EOF
	}
	if err != nil {
		if ctx.Err() != nil {
			return Frame{}, ctx.Err()
		}
		return Frame{}, fmt.Errorf("%s: reading frame %d from ffmpeg: %w", s.path, s.n*s.every, err)
	}
	f := Frame{Frame: s.n * s.every, Name: fmt.Sprintf("frame %d", s.n*s.every), Data: data}
	s.n++
	return f, nil
}

// Len is the number of frames the container announces, after --every and --max-frames; -1
// when it announces none.
func (s *FFmpegSource) Len() int { return s.total }

// Close stops ffmpeg if it is still running; it is idempotent.
func (s *FFmpegSource) Close() error {
	s.cancel()
	s.wait()
	return nil
}

// wait reaps ffmpeg once and returns its exit error, if any.
func (s *FFmpegSource) wait() error {
	s.closeOnce.Do(func() { s.closeErr = s.cmd.Wait() })
	return s.closeErr
}

// reason is ffmpeg's own last words, which say what was wrong far better than an exit status.
func (s *FFmpegSource) reason(err error) string {
	msg := strings.TrimSpace(s.stderr.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[i+1:])
	}
	if msg == "" && err != nil {
		return err.Error()
	}
	if msg == "" {
		return "the file holds no video stream"
	}
	return msg
}

// probeFrames asks ffprobe (installed beside ffmpeg) how many frames will be kept, for
// progress; -1 when it cannot tell.
func probeFrames(ctx context.Context, ffmpeg, path string, o Options) int {
	probe := strings.TrimSuffix(ffmpeg, "ffmpeg") + "ffprobe"
	if !strings.HasSuffix(ffmpeg, "ffmpeg") {
		return -1
	}
	out, err := exec.CommandContext(ctx, probe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=nb_frames,avg_frame_rate,duration:format=duration", "-of", "json", path).Output()
	if err != nil {
		return -1
	}
	return keptFrames(out, o)
}

// keptFrames reads ffprobe's JSON: the stream's frame count, else its duration × frame rate.
func keptFrames(probe []byte, o Options) int {
	var p struct {
		Streams []struct {
			NbFrames string `json:"nb_frames"`
			Rate     string `json:"avg_frame_rate"`
			Duration string `json:"duration"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if json.Unmarshal(probe, &p) != nil || len(p.Streams) == 0 {
		return -1
	}
	st := p.Streams[0]
	n, err := strconv.Atoi(st.NbFrames)
	if err != nil || n <= 0 {
		dur, err1 := strconv.ParseFloat(st.Duration, 64)
		if err1 != nil {
			dur, err1 = strconv.ParseFloat(p.Format.Duration, 64)
		}
		num, den, ok := strings.Cut(st.Rate, "/")
		fn, err2 := strconv.ParseFloat(num, 64)
		fd, err3 := strconv.ParseFloat(den, 64)
		if err1 != nil || !ok || err2 != nil || err3 != nil || fd == 0 || dur <= 0 || fn <= 0 {
			return -1
		}
		n = int(math.Round(dur * fn / fd))
	}
	kept := (n + o.every() - 1) / o.every()
	if o.MaxFrames > 0 {
		kept = min(kept, o.MaxFrames)
	}
	return kept
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// ReadPNG reads one PNG file from a stream of PNG files written back to back (ffmpeg's
// image2pipe), by walking its chunks up to IEND. It returns io.EOF at a clean end of stream
// and refuses a file larger than limit bytes. CRCs are left to the PNG decoder.
func ReadPNG(r io.Reader, limit int) ([]byte, error) {
	sig := make([]byte, len(pngSignature))
	if n, err := io.ReadFull(r, sig); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("truncated PNG signature: %w", io.ErrUnexpectedEOF)
	}
	if !bytes.Equal(sig, pngSignature) {
		return nil, errors.New("not a PNG stream")
	}
	var buf bytes.Buffer
	buf.Write(sig)
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("truncated PNG after %d bytes: %w", buf.Len(), io.ErrUnexpectedEOF)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if int64(buf.Len())+8+n+4 > int64(limit) {
			return nil, fmt.Errorf("PNG larger than %d bytes", limit)
		}
		buf.Write(hdr[:])
		// Copy rather than allocate what the header claims: the claim may be a lie.
		if got, _ := io.CopyN(&buf, r, n+4); got < n+4 { // data and CRC
			return nil, fmt.Errorf("truncated PNG chunk %q: %w", hdr[4:], io.ErrUnexpectedEOF)
		}
		if string(hdr[4:]) == "IEND" {
			return buf.Bytes(), nil
		}
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

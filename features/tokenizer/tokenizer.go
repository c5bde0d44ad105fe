// Package tokenizer is CLIP's byte-level BPE tokenizer, the one Stable Diffusion's text
// encoders were trained with, read from a diffusers folder's tokenizer/ (vocab.json,
// merges.txt, tokenizer_config.json, special_tokens_map.json).
//
// It follows OpenAI's simple_tokenizer.py and Hugging Face's CLIPTokenizer: HTML entities
// unescaped twice, whitespace runs collapsed to one space and trimmed, lower-cased, split
// with CLIP's pattern, each piece mapped byte by byte to printable characters, merged by
// rank with "</w>" marking the end of a word, then BOS + at most 75 tokens + EOS, padded to
// 77 with the pad token the folder names. ftfy's mojibake repair is not done: it changes only
// text that is already broken.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// ContextLength is the number of ids a CLIP text encoder takes.
const ContextLength = 77

// The special tokens of CLIP's vocabulary and their ids in the real one (49408 entries).
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
	BOS         = 49406
	EOS         = 49407
)

// maxMerges is how many merges CLIP uses: 49152 − 256 − 2 (OpenAI's and Hugging Face's
// loaders both cut merges.txt there).
const maxMerges = 49152 - 256 - 2

// endOfWord marks the last symbol of a pre-token.
const endOfWord = "</w>"

// pattern is CLIP's pre-tokenisation: the special tokens, English contractions, letter runs,
// single digits, and runs of anything else but whitespace. Go's leftmost-first alternation
// picks what Python's regex module picks.
var pattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`)

// Tokenizer encodes text into CLIP token ids. It is safe for concurrent use.
type Tokenizer struct {
	encoder map[string]int
	decoder map[int]string
	ranks   map[[2]string]int
	bos     int
	eos     int
	pad     int
	unk     int

	mu    sync.Mutex
	cache map[string][]string // BPE of a pre-token, bounded
}

// Special names the special tokens. Empty fields take CLIPTokenizer's defaults:
// <|startoftext|>, and <|endoftext|> for the others.
type Special struct {
	BOS, EOS, Pad, Unk string
}

// Load reads a tokenizer folder (a diffusers model's tokenizer/): vocab.json, merges.txt,
// and the special tokens its tokenizer_config.json and special_tokens_map.json name.
func Load(dir string) (*Tokenizer, error) {
	vocabPath := filepath.Join(dir, "vocab.json")
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("CLIP tokenizer: %w (a diffusers folder keeps vocab.json and merges.txt in tokenizer/)", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("%s: not a JSON map of token to id: %w", vocabPath, err)
	}
	mergesPath := filepath.Join(dir, "merges.txt")
	data, err = os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("CLIP tokenizer: %w", err)
	}
	merges, err := ParseMerges(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mergesPath, err)
	}
	special, err := readSpecial(dir)
	if err != nil {
		return nil, err
	}
	t, err := New(vocab, merges, special)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// ParseMerges reads merges.txt: an optional "#version" line, then one "left right" pair a
// line, best first. Like CLIP's loaders it keeps the first 48894 merges.
func ParseMerges(text string) ([][2]string, error) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
		lines = lines[1:]
	}
	var merges [][2]string
	for i, line := range lines {
		if len(merges) == maxMerges {
			break
		}
		line = strings.TrimRight(line, "\r")
		left, right, ok := strings.Cut(line, " ")
		if !ok || left == "" || right == "" || strings.Contains(right, " ") {
			return nil, fmt.Errorf("line %d: %q is not a merge (two symbols separated by one space)", i+2, line)
		}
		merges = append(merges, [2]string{left, right})
	}
	return merges, nil
}

// readSpecial reads the special tokens from tokenizer_config.json, then
// special_tokens_map.json, which wins where both name one (as in transformers). Missing
// files leave CLIPTokenizer's defaults.
func readSpecial(dir string) (Special, error) {
	var s Special
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return s, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return s, fmt.Errorf("%s: %w", path, err)
		}
		for key, dst := range map[string]*string{"bos_token": &s.BOS, "eos_token": &s.EOS, "pad_token": &s.Pad, "unk_token": &s.Unk} {
			raw, ok := m[key]
			if !ok {
				continue
			}
			tok, err := tokenContent(raw)
			if err != nil {
				return s, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			if tok != "" {
				*dst = tok
			}
		}
	}
	return s, nil
}

// tokenContent reads a special token written as a string or as an AddedToken object.
func tokenContent(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		if string(raw) == "null" {
			return "", nil
		}
		return "", fmt.Errorf("%s is neither a token string nor an object with \"content\"", raw)
	}
	return *obj.Content, nil
}

// New builds a tokenizer from a vocabulary (token → id), merges in rank order, and the
// special tokens.
func New(vocab map[string]int, merges [][2]string, special Special) (*Tokenizer, error) {
	if special.BOS == "" {
		special.BOS = StartOfText
	}
	if special.EOS == "" {
		special.EOS = EndOfText
	}
	if special.Pad == "" {
		special.Pad = EndOfText
	}
	if special.Unk == "" {
		special.Unk = EndOfText
	}
	t := &Tokenizer{
		encoder: vocab,
		decoder: make(map[int]string, len(vocab)),
		ranks:   make(map[[2]string]int, len(merges)),
		cache:   map[string][]string{},
	}
	for tok, id := range vocab {
		t.decoder[id] = tok
	}
	for i, m := range merges {
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = i
		}
	}
	for _, s := range []struct {
		name, tok string
		id        *int
	}{{"BOS", special.BOS, &t.bos}, {"EOS", special.EOS, &t.eos}, {"pad", special.Pad, &t.pad}, {"unknown", special.Unk, &t.unk}} {
		id, ok := vocab[s.tok]
		if !ok {
			return nil, fmt.Errorf("the %s token %q is not in the vocabulary", s.name, s.tok)
		}
		*s.id = id
	}
	return t, nil
}

// BOS, EOS and Pad are the ids of the special tokens.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-text id.
func (t *Tokenizer) EOS() int { return t.eos }

// Pad is the id that fills the context after EOS (49407 for SD 1.x, 0 — "!" — for SD 2.x).
func (t *Tokenizer) Pad() int { return t.pad }

// Clean is CLIP's text clean-up without ftfy: HTML entities unescaped twice, invalid UTF-8
// replaced, whitespace runs (Python's notion of whitespace) made one space, trimmed, and
// lower-cased as Python's str.lower does.
func Clean(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = html.UnescapeString(html.UnescapeString(text))
	text = strings.Join(strings.FieldsFunc(text, isPySpace), " ")
	return lower(text)
}

// isPySpace is Python's str.isspace: Go's unicode.IsSpace plus the information separators
// U+001C–U+001F.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// lower is Python's str.lower: simple case mapping, plus the two rules Go's ToLower lacks,
// U+0130 → "i̇" and a capital sigma ending a word → "ς". The word-end test approximates
// Unicode's Final_Sigma context (cased letter before, none after, skipping marks and
// apostrophes).
func lower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && finalSigma(rs, i):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if caseIgnorable(rs[j]) {
			continue
		}
		before = cased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if caseIgnorable(rs[j]) {
			continue
		}
		return !cased(rs[j])
	}
	return true
}

func cased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '·', '\u2018', '\u2019', '\u2024', '\u2027', '\u00ad':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// byteRunes maps each byte to a printable character, as GPT-2's and CLIP's bytes_to_unicode:
// printable Latin-1 bytes map to themselves, the others to U+0100 upwards in byte order.
var byteRunes, runeBytes = func() ([256]rune, map[rune]byte) {
	var enc [256]rune
	dec := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || ('¡' <= b && b <= '¬') || ('®' <= b && b <= 'ÿ') {
			enc[b] = rune(b)
		} else {
			enc[b] = rune(256 + n)
			n++
		}
		dec[enc[b]] = byte(b)
	}
	return enc, dec
}()

// Tokens is the BPE of cleaned text, without BOS, EOS or truncation.
func (t *Tokenizer) Tokens(text string) []string {
	var out []string
	for _, piece := range pattern.FindAllString(Clean(text), -1) {
		out = append(out, t.bpe(piece)...)
	}
	return out
}

// IDs is the ids of Tokens; a token missing from the vocabulary (only possible with a
// reduced one) becomes the unknown token.
func (t *Tokenizer) IDs(text string) []int {
	toks := t.Tokens(text)
	ids := make([]int, len(toks))
	for i, tok := range toks {
		id, ok := t.encoder[tok]
		if !ok {
			id = t.unk
		}
		ids[i] = id
	}
	return ids
}

// Encode is what a CLIP text encoder takes: BOS, at most 75 tokens of text, EOS, then the pad
// id up to 77.
func (t *Tokenizer) Encode(text string) []int64 {
	ids := t.IDs(text)
	if len(ids) > ContextLength-2 {
		ids = ids[:ContextLength-2]
	}
	out := make([]int64, 0, ContextLength)
	out = append(out, int64(t.bos))
	for _, id := range ids {
		out = append(out, int64(id))
	}
	out = append(out, int64(t.eos))
	for len(out) < ContextLength {
		out = append(out, int64(t.pad))
	}
	return out
}

// Truncated reports whether text has more tokens than the context holds.
func (t *Tokenizer) Truncated(text string) bool { return len(t.Tokens(text)) > ContextLength-2 }

// Decode turns ids back into text: a leading BOS is dropped and decoding stops at EOS, word
// ends become spaces, and the result is trimmed. For text whose pieces were separated by
// spaces, Decode(Encode(s)) == Clean(s).
func (t *Tokenizer) Decode(ids []int64) string {
	if len(ids) > 0 && int(ids[0]) == t.bos {
		ids = ids[1:]
	}
	var sb strings.Builder
	for _, id := range ids {
		if int(id) == t.eos {
			break
		}
		tok, ok := t.decoder[int(id)]
		if !ok {
			continue
		}
		sb.WriteString(tok)
	}
	var raw []byte
	for _, r := range sb.String() {
		if b, ok := runeBytes[r]; ok {
			raw = append(raw, b)
		} else {
			raw = utf8.AppendRune(raw, r)
		}
	}
	text := strings.ToValidUTF8(string(raw), "\uFFFD")
	return strings.TrimSpace(strings.ReplaceAll(text, endOfWord, " "))
}

// bpe merges one pre-token's byte characters by rank.
func (t *Tokenizer) bpe(piece string) []string {
	if strings.EqualFold(piece, StartOfText) || strings.EqualFold(piece, EndOfText) {
		return []string{strings.ToLower(piece)}
	}
	t.mu.Lock()
	cached, ok := t.cache[piece]
	t.mu.Unlock()
	if ok {
		return cached
	}
	word := make([]string, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		word = append(word, string(byteRunes[piece[i]]))
	}
	word[len(word)-1] += endOfWord
	for len(word) > 1 {
		best, rank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			if r, ok := t.ranks[[2]string{word[i], word[i+1]}]; ok && (best < 0 || r < rank) {
				best, rank = i, r
			}
		}
		if best < 0 {
			break
		}
		word = mergePair(word, word[best], word[best+1])
	}
	t.mu.Lock()
	if len(t.cache) >= 1<<14 {
		clear(t.cache)
	}
	t.cache[piece] = word
	t.mu.Unlock()
	return word
}

// mergePair replaces every adjacent (first, second) in word by their concatenation: one BPE
// merge step. It returns a new slice.
func mergePair(word []string, first, second string) []string {
	merged := make([]string, 0, len(word))
	for i := 0; i < len(word); {
		if i+1 < len(word) && word[i] == first && word[i+1] == second {
			merged = append(merged, first+second)
			i += 2
			continue
		}
		merged = append(merged, word[i])
		i++
	}
	return merged
}

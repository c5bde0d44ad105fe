package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// imported is one model a user registered by path.
type imported struct {
	Name  string    `json:"name"`
	Path  string    `json:"path"`
	Kind  Kind      `json:"kind"`
	Added time.Time `json:"added"`
}

type registry struct {
	Models []imported `json:"models"`
}

func (r registry) find(name string) (imported, bool) {
	for _, m := range r.Models {
		if m.Name == name {
			return m, true
		}
	}
	return imported{}, false
}

// RegistryPath is the JSON file that lists imported models:
// $DIFFSIM_CONFIG/models.json, else os.UserConfigDir()/diffsim/models.json.
func RegistryPath() (string, error) {
	dir := os.Getenv("DIFFSIM_CONFIG")
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find diffsim's config folder: %w; set DIFFSIM_CONFIG", err)
		}
		dir = filepath.Join(base, "diffsim")
	}
	return filepath.Join(dir, "models.json"), nil
}

func loadRegistry() (registry, error) {
	var r registry
	path, err := RegistryPath()
	if err != nil {
		return r, nil // no config folder, so nothing was imported; Import reports why
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("read %s: %w; fix or delete the file", path, err)
	}
	return r, nil
}

var importName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Import registers a local folder or .onnx file under a name, so --model
// NAME finds it. The files stay where they are; the registry keeps the
// absolute path. An empty name means the file or folder's base name.
// Importing a name again points it at the new path.
func Import(path, name string) error {
	p, err := expandHome(path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	kind, _ := detect(abs)
	if kind == KindUnknown {
		return fmt.Errorf("import %s: not a model diffsim recognises: want a .onnx file, a folder with model_index.json and unet/model.onnx, or one with config.json and onnx/model.onnx (or onnx/vision_model.onnx)", path)
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	}
	if !importName.MatchString(name) {
		return fmt.Errorf("import %s: invalid name %q: use letters, digits, '.', '_' and '-' (no '/', which means org/repo)", path, name)
	}
	if _, ok := knownModel(name); ok || name == Builtin || isEmbedded(name) {
		return fmt.Errorf("import %s: %q is a built-in name; choose another with --name", path, name)
	}
	reg, err := loadRegistry()
	if err != nil {
		return err
	}
	reg.Models = slices.DeleteFunc(reg.Models, func(m imported) bool { return m.Name == name })
	reg.Models = append(reg.Models, imported{Name: name, Path: abs, Kind: kind, Added: time.Now().UTC().Truncate(time.Second)})
	slices.SortFunc(reg.Models, func(a, b imported) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(reg, "", "  ")
	if err != nil {
		return err
	}
	regPath, err := RegistryPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(regPath), 0o755); err != nil {
		return err
	}
	if err := renameio.WriteFile(regPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("import %s: write %s: %w", path, regPath, err)
	}
	return nil
}

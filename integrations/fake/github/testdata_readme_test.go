package fakegithub_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testdata/README.md names the source and licence of every payload the tests use: a file added
// without a row, or a row whose file is gone, fails here.
func TestTestdataReadmeListsEveryFile(t *testing.T) {
	const root = "../../../testdata"
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "/") {
			listed[m[1]] = true
		}
	}
	if len(listed) == 0 {
		t.Fatal("README lists no files")
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		base := filepath.Base(rel)
		if rel == "README.md" || strings.HasPrefix(base, "LICENSE") || strings.HasPrefix(base, "COPYING") {
			return nil
		}
		if !listed[rel] {
			t.Errorf("testdata/%s is not listed in testdata/README.md", rel)
		}
		delete(listed, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range listed {
		t.Errorf("testdata/README.md lists %s, which is not there", rel)
	}
}

package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// openDataDir makes --data-dir absolute, creates it when missing, and says
// where it is. A relative default lands wherever the process was started: a
// node started from another folder would silently make a new cluster with a
// new admin token, so a new, empty data dir is a warning.
func (n *Node) openDataDir() error {
	abs, err := filepath.Abs(n.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", n.cfg.DataDir, err)
	}
	n.cfg.DataDir = abs
	empty, err := emptyDir(abs)
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", abs, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return fmt.Errorf("--data-dir %s: %w", abs, err)
	}
	if empty {
		n.log.Warn("switchboard: data dir is new: this node starts with empty storage (a new cluster unless --etcd-endpoints names one) and a new admin token unless --admin-token is set; point --data-dir at the existing one to keep your data", "data_dir", abs)
		return nil
	}
	n.log.Info("switchboard: data dir", "data_dir", abs)
	return nil
}

// emptyDir reports whether dir is missing or holds nothing.
func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); errors.Is(err, io.EOF) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	return false, nil
}

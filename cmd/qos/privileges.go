package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges switches the whole process (every thread, as Go's
// syscall.Setuid does on Linux) to the named user, or, when name is empty
// and the daemon runs as root through sudo, to the invoking user. Running
// as an ordinary user with no --user is fine: there is nothing to drop.
func dropPrivileges(name string, log *slog.Logger) error {
	if name == "" {
		if os.Geteuid() != 0 {
			return nil
		}
		name = os.Getenv("SUDO_USER")
		if name == "" || name == "root" {
			log.Warn("running as root with no --user: privileges are kept")
			return nil
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--user %s: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	if os.Geteuid() == uid {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("--user %s: only root can switch user (running as uid %d)", name, os.Geteuid())
	}
	groups, err := u.GroupIds()
	if err != nil {
		return fmt.Errorf("--user %s: list groups: %w", name, err)
	}
	gids := make([]int, 0, len(groups))
	for _, g := range groups {
		if n, err := strconv.Atoi(g); err == nil {
			gids = append(gids, n)
		}
	}
	if err := syscall.Setgroups(gids); err != nil {
		return fmt.Errorf("drop privileges to %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("drop privileges to %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("drop privileges to %s: setuid: %w", name, err)
	}
	log.Info("dropped privileges", "user", name, "uid", uid, "gid", gid)
	return nil
}

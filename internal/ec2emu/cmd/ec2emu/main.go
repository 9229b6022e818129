// Command ec2emu serves the EC2 security-group emulator on a loopback
// address, for trying mailfw by hand:
//
//	go run ./internal/ec2emu/cmd/ec2emu -addr 127.0.0.1:4566 -groups 2 -tag role=mx
//
// It seeds the given number of groups in each region, prints their ids,
// and serves until interrupted. Any access key is accepted unless -key and
// -secret are given.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/mailfw/mailfw/internal/ec2emu"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4566", "loopback address to listen on")
	regions := flag.String("regions", "us-east-1", "comma-separated regions to seed")
	groups := flag.Int("groups", 1, "groups to seed in each region")
	tag := flag.String("tag", "role=mx", "tag key=value for seeded groups")
	key := flag.String("key", "", "the only access key id to accept (with -secret)")
	secret := flag.String("secret", "", "secret for -key; signatures are checked")
	quota := flag.Int("quota", ec2emu.DefaultQuota, "rules per group and family")
	flag.Parse()
	if err := run(*addr, *regions, *groups, *tag, *key, *secret, *quota); err != nil {
		fmt.Fprintln(os.Stderr, "ec2emu:", err)
		os.Exit(1)
	}
}

func run(addr, regions string, groups int, tag, key, secret string, quota int) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parsing -addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("-addr must be a loopback address such as 127.0.0.1:4566")
	}
	opts := []ec2emu.Option{ec2emu.WithQuota(quota)}
	if key != "" {
		opts = append(opts, ec2emu.WithCredentials(key, secret))
	}
	s := ec2emu.NewHandler(opts...)
	k, v, _ := strings.Cut(tag, "=")
	for _, r := range strings.Split(regions, ",") {
		for range groups {
			g := s.SeedGroup(r, ec2emu.Group{Tags: []ec2emu.Tag{{Key: k, Value: v}}})
			fmt.Printf("%s %s\n", r, g.ID)
		}
	}
	log.Printf("serving on http://%s", addr)
	return http.ListenAndServe(addr, s)
}

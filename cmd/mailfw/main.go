// Command mailfw keeps the inbound firewall of mail servers in the state a
// policy file declares. See `mailfw --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newSystemStreams(), os.Args[1:])
	stop()
	os.Exit(code)
}

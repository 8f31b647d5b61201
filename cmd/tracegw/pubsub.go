package main

import (
	"os"

	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// localPubSub is the Pub/Sub that dev and emulator use: the one at
// PUBSUB_EMULATOR_HOST when set (the client library finds it itself), else
// an in-process pstest server on a loopback port that other processes can
// reach too.
type localPubSub struct {
	Addr string
	Opts []option.ClientOption
	srv  *pstest.Server
}

func startPubSub() *localPubSub {
	if host := os.Getenv("PUBSUB_EMULATOR_HOST"); host != "" {
		return &localPubSub{Addr: host}
	}
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	return &localPubSub{Addr: srv.Addr, srv: srv, Opts: []option.ClientOption{
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}}
}

// Close stops the in-process server, if any.
func (p *localPubSub) Close() {
	if p.srv != nil {
		_ = p.srv.Close()
	}
}

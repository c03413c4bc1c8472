// Command baseline is the yardstick of the benchmark: a bare
// httputil.ReverseProxy with default settings except MaxIdleConnsPerHost
// 256, no authentication and no logging.
//
//	baseline -listen 127.0.0.1:18080 -upstream http://127.0.0.1:18081
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof" // only served with -pprof
	"net/url"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to listen on")
	upstream := flag.String("upstream", "", "upstream base URL (required)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (profiling runs)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }() // DefaultServeMux has pprof
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "baseline: -upstream must be an absolute URL, got %q\n", *upstream)
		os.Exit(2)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	rp.Transport = t
	log.Fatal(http.ListenAndServe(*listen, rp)) // rp, not DefaultServeMux: pprof is never on this port
}

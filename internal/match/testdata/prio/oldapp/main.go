// Command oldapp is a test fixture for mamori's vulnerability
// prioritisation tests (see README.md beside it).
package main

import (
	"os"

	"golang.org/x/crypto/salsa20"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/text/language"
)

func main() {
	var key [32]byte
	out := make([]byte, 4)
	salsa20.XORKeyStream(out, []byte("test"), make([]byte, 8), &key)
	e := hpack.AppendHuffmanString(nil, language.English.String())
	os.Stdout.Write(append(e, out...))
}

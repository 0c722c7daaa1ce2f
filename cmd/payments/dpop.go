package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/obpay/payments/client"
)

const dpopUsage = `usage:
  payments dpop keygen [--alg ES256|EdDSA|Ed25519|PS256] [--format jwk|pem]   print a new private key
  payments dpop proof --key FILE --method METHOD --url URL [--token T] [--nonce N]   print one DPoP proof
  payments dpop thumbprint --key FILE   print the key's RFC 7638 thumbprint (the token's cnf.jkt)

A proof is good for one request: make a new one for every curl call, e.g.
  curl -H "Authorization: DPoP $TOKEN" \
       -H "DPoP: $(payments dpop proof --key key.jwk --method GET --url "$URL" --token "$TOKEN" --nonce "$NONCE")" "$URL"
`

// dpopCommand runs `payments dpop ...`: key generation, one proof for curl, and thumbprints,
// all through the client SDK.
func dpopCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: dpop needs a sub-command (keygen, proof, thumbprint)", errUsage)
	}
	if wantsHelp(args[:1]) {
		fmt.Fprint(stdout, dpopUsage)
		return errHelp
	}
	fs := flag.NewFlagSet("payments dpop "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dpopUsage) }
	switch args[0] {
	case "keygen":
		alg := fs.String("alg", "ES256", "signing algorithm: ES256, EdDSA (or Ed25519), PS256")
		format := fs.String("format", "jwk", "output format: jwk or pem")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		a, err := client.ParseAlgorithm(*alg)
		if err != nil {
			return fmt.Errorf("%w: --alg %q: use ES256, EdDSA, Ed25519 or PS256", errUsage, *alg)
		}
		if *format != "jwk" && *format != "pem" {
			return fmt.Errorf("%w: --format %q: use jwk or pem", errUsage, *format)
		}
		key, err := client.GenerateKey(a)
		if err != nil {
			return err
		}
		var out []byte
		if *format == "pem" {
			out, err = key.MarshalPEM()
		} else {
			out, err = key.MarshalJWK()
			out = append(out, '\n')
		}
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	case "proof":
		keyFile := fs.String("key", "", "private key file (JWK or PEM), required")
		method := fs.String("method", "", "HTTP method of the request, required")
		target := fs.String("url", "", "URL of the request, required")
		token := fs.String("token", "", "access token sent with the request (adds ath)")
		nonce := fs.String("nonce", "", "the server's latest DPoP-Nonce")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if *keyFile == "" || *method == "" || *target == "" {
			return fmt.Errorf("%w: dpop proof needs --key, --method and --url", errUsage)
		}
		key, err := loadKeyArg(*keyFile)
		if err != nil {
			return err
		}
		proof, err := key.Proof(client.ProofRequest{Method: *method, URL: *target, AccessToken: *token, Nonce: *nonce})
		if errors.Is(err, client.ErrInvalidURL) {
			return fmt.Errorf("%w: --url %q: %v", errUsage, *target, err)
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, proof)
		return err
	case "thumbprint":
		keyFile := fs.String("key", "", "private key file (JWK or PEM), required")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if *keyFile == "" {
			return fmt.Errorf("%w: dpop thumbprint needs --key", errUsage)
		}
		key, err := loadKeyArg(*keyFile)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, key.Thumbprint())
		return err
	default:
		return fmt.Errorf("%w: unknown dpop sub-command %q", errUsage, args[0])
	}
}

// parseFlags parses a sub-command's flags and maps the flag package's outcomes to ours.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelp
	case err != nil:
		return fmt.Errorf("%w: %v", errUsage, err)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func loadKeyArg(path string) (*client.Key, error) {
	key, err := client.LoadKey(path)
	if errors.Is(err, client.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: --key: %v", errUsage, err)
	}
	return key, err
}

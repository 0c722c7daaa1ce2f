#!/usr/bin/env bash
#
# A whole sandbox payment with nothing but curl, openssl and jq, every DPoP
# proof signed here (ES256), the nonce dance included:
#
#   1. a DPoP key pair (P-256), and a client-credentials token bound to it;
#   2. alice and bob each authorise an account access consent, so that the
#      aggregator learns alice's account id and bob's account number;
#   3. a domestic payment consent from alice to bob, authorised by alice at
#      the sandbox authorization server (authorization code, PKCE, dpop_jkt);
#   4. the code exchanged for a token bound to the same key (cnf.jkt);
#   5. the payment, then the payment and alice's balance read back.
#
# Run it against the sandbox (make run, or payments serve with
# PAYMENTS_DEV_AUTH=true), which opens alice's and bob's accounts at start:
#
#   examples/curl/sandbox.sh
#   PAYMENTS_PUBLIC_URL=http://localhost:9090 AMOUNT=25.00 examples/curl/sandbox.sh
#
# It needs bash, curl, jq 1.5 or later and openssl (OpenSSL or LibreSSL: it
# uses only ecparam, ec, dgst, asn1parse, base64 and rand). PAYMENTS_PUBLIC_URL is the service's public URL (default
# http://localhost:8080): each proof's htu is built from it, and the service
# checks htu against its own PAYMENTS_PUBLIC_URL, so the two must agree.
# Tokens and proofs are never printed.

set -euo pipefail

BASE=${PAYMENTS_PUBLIC_URL:-http://localhost:8080}
BASE=${BASE%/}
AMOUNT=${AMOUNT:-10.00}
CLIENT_ID=sandbox-tpp
CLIENT_SECRET=sandbox-secret
REDIRECT_URI=http://127.0.0.1/callback
API=$BASE/open-banking/v3.1

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "sandbox.sh needs $1 ($2)" >&2
    exit 2
  }
}
need curl "apt-get install curl, brew install curl"
need openssl "apt-get install openssl, brew install openssl"
need jq "apt-get install jq, brew install jq"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step=0
say() {
  step=$((step + 1))
  printf '%2d. %s\n' "$step" "$*"
}

fail() {
  echo "sandbox.sh: $*" >&2
  if [ -s "$work/body" ]; then
    echo "the service answered: $(head -c 600 "$work/body")" >&2
  fi
  exit 1
}

# b64url encodes stdin as unpadded base64url (RFC 7515 §2).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# sha256_b64url hashes its argument and encodes the digest as base64url.
sha256_b64url() { printf '%s' "$1" | openssl dgst -sha256 -binary | b64url; }

# unhex writes the bytes of a hex string to stdout.
unhex() {
  local hex=$1 i
  for ((i = 0; i < ${#hex}; i += 2)); do
    printf "\\x${hex:i:2}"
  done
}

# jose_signature turns the DER ECDSA signature openssl writes (a SEQUENCE of
# two INTEGERs) into the JWS form, r and s as 32 bytes each (RFC 7518 §3.4).
jose_signature() {
  local der ints r s
  der=$(cat)
  ints=$(printf '%s' "$der" | openssl base64 -d -A | openssl asn1parse -inform DER | awk -F: '/INTEGER/ {print $NF}')
  r=$(sed -n 1p <<<"$ints")
  s=$(sed -n 2p <<<"$ints")
  r=$(printf '%064s' "$r" | tr ' ' 0)
  s=$(printf '%064s' "$s" | tr ' ' 0)
  unhex "${r: -64}${s: -64}"
}

# The DPoP key: P-256, its public JWK, and the JWK's SHA-256 thumbprint
# (RFC 7638: the required members in lexicographic order, no white space).
openssl ecparam -name prime256v1 -genkey -noout -out "$work/key.pem" 2>/dev/null
openssl ec -in "$work/key.pem" -pubout -outform DER -out "$work/pub.der" 2>/dev/null
x=$(tail -c 64 "$work/pub.der" | head -c 32 | b64url)
y=$(tail -c 32 "$work/pub.der" | b64url)
JWK="{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"$x\",\"y\":\"$y\"}"
JKT=$(sha256_b64url "$JWK")

NONCE="" # the latest DPoP-Nonce the service sent

# proof METHOD URL [ACCESS_TOKEN] prints a new DPoP proof (RFC 9449 §4.2):
# a fresh jti and iat, the request's method and URL, the token's hash (ath)
# when there is a token, and the service's latest nonce when there is one.
proof() {
  local header claims input der
  header=$(jq -cn --argjson jwk "$JWK" '{typ: "dpop+jwt", alg: "ES256", jwk: $jwk}' | tr -d '\n' | b64url)
  claims=$(jq -cn --arg jti "$(openssl rand -hex 16)" --arg htm "$1" --arg htu "$2" \
    --arg ath "$(if [ -n "${3:-}" ]; then sha256_b64url "$3"; fi)" --arg nonce "$NONCE" --argjson iat "$(date +%s)" \
    '{jti: $jti, htm: $htm, htu: $htu, iat: $iat}
     + (if $ath != "" then {ath: $ath} else {} end)
     + (if $nonce != "" then {nonce: $nonce} else {} end)' | tr -d '\n' | b64url)
  input="$header.$claims"
  der=$(printf '%s' "$input" | openssl dgst -sha256 -sign "$work/key.pem" | openssl base64 -A)
  printf '%s.%s' "$input" "$(printf '%s' "$der" | jose_signature | b64url)"
}

# send METHOD URL TOKEN [curl arguments...] sends one request with a new
# proof (and "Authorization: DPoP TOKEN" when TOKEN is not empty). The status
# goes to $STATUS, the body to $work/body. The service's DPoP-Nonce is kept
# from every answer; when the answer is a nonce challenge (401 use_dpop_nonce
# from the API, 400 use_dpop_nonce from a token endpoint), nothing was done,
# so the same request goes once more with a new proof carrying the nonce.
send() {
  local method=$1 url=$2 token=$3 attempt n
  shift 3
  for attempt in 1 2; do
    local args=(-sS -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$method"
      -H "DPoP: $(proof "$method" "$url" "$token")")
    if [ -n "$token" ]; then
      args+=(-H "Authorization: DPoP $token")
    fi
    STATUS=$(curl "${args[@]}" "$@" "$url") || fail "$method $url: no answer (is the service running at $BASE?)"
    n=$(tr -d '\r' <"$work/headers" | awk 'tolower($1) == "dpop-nonce:" {print $2}' | tail -n 1)
    if [ -n "$n" ]; then
      NONCE=$n
    fi
    if [ "$attempt" = 1 ] && nonce_challenge; then
      echo "    $method ${url#"$BASE"}: $STATUS use_dpop_nonce, sending it again with the DPoP-Nonce the service gave"
      continue
    fi
    echo "    $method ${url#"$BASE"}: $STATUS"
    return
  done
}

nonce_challenge() {
  case $STATUS in
  401) tr -d '\r' <"$work/headers" | grep -qi '^www-authenticate:.*error="use_dpop_nonce"' ;;
  400) [ "$(jq -r '.error? // empty' "$work/body" 2>/dev/null)" = use_dpop_nonce ] ;;
  *) return 1 ;;
  esac
}

# want STATUS fails unless the last answer had that status.
want() {
  [ "$STATUS" = "$1" ] || fail "HTTP $STATUS, want $1"
}

# token_request FORM... asks the token endpoint for a token, into $TOKEN.
token_request() {
  send POST "$BASE/oauth2/token" "" -u "$CLIENT_ID:$CLIENT_SECRET" "$@"
  want 200
  [ "$(jq -r .token_type "$work/body")" = DPoP ] || fail "the token is not DPoP-bound"
  TOKEN=$(jq -r .access_token "$work/body")
}

# authorise CONSENT_ID SCOPE PSU [DEBTOR_ACCOUNT] has the customer PSU
# approve the consent at the sandbox authorization server (it stands in for
# the bank's login and consent screen), then exchanges the code for a token
# bound to our key, into $TOKEN.
authorise() {
  local consent=$1 scope=$2 psu=$3 debtor=${4:-} verifier code
  verifier=$(openssl rand 32 | b64url)
  local query=(--data-urlencode response_type=code --data-urlencode "client_id=$CLIENT_ID"
    --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "scope=$scope"
    --data-urlencode "code_challenge=$(sha256_b64url "$verifier")" --data-urlencode code_challenge_method=S256
    --data-urlencode "dpop_jkt=$JKT" --data-urlencode "consent_id=$consent" --data-urlencode "psu=$psu")
  if [ -n "$debtor" ]; then
    query+=(--data-urlencode "debtor_account=$debtor")
  fi
  STATUS=$(curl -sS -o "$work/body" -w '%{http_code}' -G -H 'Accept: application/json' "${query[@]}" "$BASE/oauth2/authorize") ||
    fail "GET /oauth2/authorize: no answer"
  echo "    GET /oauth2/authorize (as $psu): $STATUS"
  want 200
  code=$(jq -r .code "$work/body")
  token_request --data-urlencode grant_type=authorization_code --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$verifier"
}

# read_accounts PSU creates an account access consent, has PSU authorise it,
# lists PSU's accounts with the token it got ($TOKEN) and puts the first GBP
# account, as JSON, in $ACCOUNT.
read_accounts() {
  local consent
  send POST "$API/aisp/account-access-consents" "$CC" -H 'Content-Type: application/json' \
    -d '{"Data":{"Permissions":["ReadAccountsBasic","ReadAccountsDetail","ReadBalances"]},"Risk":{}}'
  want 201
  consent=$(jq -r .Data.ConsentId "$work/body")
  authorise "$consent" accounts "$1"
  send GET "$API/aisp/accounts" "$TOKEN"
  want 200
  ACCOUNT=$(jq -c '[.Data.Account[] | select(.Currency == "GBP")][0] // empty' "$work/body")
  [ -n "$ACCOUNT" ] || fail "$1 has no GBP account: run the service with PAYMENTS_DEV_AUTH=true (make run), which opens one for $1"
}

# balance ACCOUNT_ID TOKEN puts the account's booked balance in $BALANCE.
balance() {
  send GET "$API/aisp/accounts/$1/balances" "$2"
  want 200
  BALANCE=$(jq -r '.Data.Balance[] | select(.Type == "InterimBooked")
    | "\(.CreditDebitIndicator) \(.Amount.Amount) \(.Amount.Currency)"' "$work/body")
}

say "DPoP key: ES256, thumbprint $JKT"

token_request --data-urlencode grant_type=client_credentials --data-urlencode "scope=accounts payments"
CC=$TOKEN
say "$CLIENT_ID has a client-credentials token bound to that key"

read_accounts alice
ALICE_READ=$TOKEN
ALICE_ID=$(jq -r .AccountId <<<"$ACCOUNT")
say "alice authorised reading her accounts: account $ALICE_ID"

read_accounts bob
BOB_SCHEME=$(jq -r .Account[0].SchemeName <<<"$ACCOUNT")
BOB_NUMBER=$(jq -r .Account[0].Identification <<<"$ACCOUNT")
say "bob authorised reading his accounts: he is paid at $BOB_SCHEME $BOB_NUMBER"

balance "$ALICE_ID" "$ALICE_READ"
BEFORE=$BALANCE
say "alice's booked balance: $BEFORE"

REF=curl-$(openssl rand -hex 4)
INITIATION=$(jq -cn --arg ref "$REF" --arg amount "$AMOUNT" --arg scheme "$BOB_SCHEME" --arg number "$BOB_NUMBER" \
  '{InstructionIdentification: $ref, EndToEndIdentification: $ref,
    InstructedAmount: {Amount: $amount, Currency: "GBP"},
    CreditorAccount: {SchemeName: $scheme, Identification: $number, Name: "Bob"}}')
send POST "$API/pisp/domestic-payment-consents" "$CC" -H 'Content-Type: application/json' \
  -H "x-idempotency-key: $(openssl rand -hex 16)" \
  -d "$(jq -cn --argjson init "$INITIATION" '{Data: {Initiation: $init}, Risk: {}}')"
want 201
CONSENT=$(jq -r .Data.ConsentId "$work/body")
say "payment consent $CONSENT for $AMOUNT GBP to bob: $(jq -r .Data.Status "$work/body")"

authorise "$CONSENT" payments alice "$ALICE_ID"
PAY=$TOKEN
say "alice approved it, paying from $ALICE_ID; the code is exchanged for a token bound to the key (cnf.jkt $JKT)"

send POST "$API/pisp/domestic-payments" "$PAY" -H 'Content-Type: application/json' \
  -H "x-idempotency-key: $(openssl rand -hex 16)" \
  -d "$(jq -cn --arg consent "$CONSENT" --argjson init "$INITIATION" '{Data: {ConsentId: $consent, Initiation: $init}, Risk: {}}')"
want 201
PAYMENT=$(jq -r .Data.DomesticPaymentId "$work/body")
say "payment $PAYMENT: $(jq -r .Data.Status "$work/body")"

send GET "$API/pisp/domestic-payments/$PAYMENT" "$CC"
want 200
say "payment $PAYMENT read back: $(jq -r .Data.Status "$work/body")"

balance "$ALICE_ID" "$ALICE_READ"
say "alice's booked balance: $BALANCE (was $BEFORE)"
[ "$BALANCE" != "$BEFORE" ] || fail "alice's balance did not change"
echo "done: the payment is booked"

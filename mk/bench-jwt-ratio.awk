# Reads `go test -bench BenchmarkVerifyJWT` output (variants raw, first and
# again) and prints the median ns/op of each and the ratios of first and again
# to raw: the cost of a DPoP request with a JWT access token seen for the
# first time (two signatures) and seen again (one), in units of one raw ES256
# verification, all from the same run. Run with mk/median.awk:
# awk -f mk/median.awk -f mk/bench-jwt-ratio.awk.
$1 ~ /^BenchmarkVerifyJWT\// {
	split($1, p, "/"); v = p[2]; sub(/-[0-9]+$/, "", v)
	vals[v, ++cnt[v]] = $3 + 0
}
END {
	if (!cnt["raw"] || !cnt["first"] || !cnt["again"]) { print "bench-jwt: raw, first and again are all needed"; exit 1 }
	raw = median("raw")
	print ""
	print "JWT access token over DPoP / raw ES256 verification (median ns/op, same run):"
	printf "  raw   %10.0f ns/op\n", raw
	printf "  first %10.0f ns/op   ratio %.2fx (two signatures)\n", median("first"), median("first") / raw
	printf "  again %10.0f ns/op   ratio %.2fx (one signature, the token cached)\n", median("again"), median("again") / raw
}

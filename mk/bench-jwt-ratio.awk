# Reads `go test -bench BenchmarkVerifyJWT` output (variants raw, first and
# again) and prints the median ns/op of each and the ratios of first and again
# to raw: the cost of a DPoP request with a JWT access token seen for the
# first time (two signatures) and seen again (one), in units of one raw ES256
# verification, all from the same run.
$1 ~ /^BenchmarkVerifyJWT\// {
	split($1, p, "/"); v = p[2]; sub(/-[0-9]+$/, "", v)
	vals[v, ++cnt[v]] = $3 + 0
}
function median(v,    i, j, m, t, a) {
	m = cnt[v]
	for (i = 1; i <= m; i++) a[i] = vals[v, i]
	for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
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

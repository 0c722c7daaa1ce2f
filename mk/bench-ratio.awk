# Reads `go test -bench` output with pairs Benchmark<Name>/<variant>/raw and
# .../full and prints, per variant, the mean ns/op of each and their ratio.
$1 ~ /^Benchmark[A-Za-z]+\// {
	n = split($1, p, "/")
	kind = p[n]; sub(/-[0-9]+$/, "", kind)
	variant = p[2]
	for (i = 3; i < n; i++) variant = variant "/" p[i]
	sum[variant, kind] += $3; cnt[variant, kind]++
	if (!(variant in seen)) { seen[variant] = 1; order[++nv] = variant }
}
END {
	print ""
	print "full check / raw signature verification (mean ns/op over the runs above, same run):"
	for (i = 1; i <= nv; i++) {
		v = order[i]
		if (cnt[v, "raw"] && cnt[v, "full"]) {
			raw = sum[v, "raw"] / cnt[v, "raw"]; full = sum[v, "full"] / cnt[v, "full"]
			printf "  %-8s raw %10.0f ns/op   full %10.0f ns/op   ratio %.2fx\n", v, raw, full, full / raw
		}
	}
}

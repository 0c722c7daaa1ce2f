# Reads `go test -bench` output with pairs Benchmark<Name>/<variant>/raw and
# .../full and prints, per variant, the median ns/op of each and their ratio.
# Run with mk/median.awk: awk -f mk/median.awk -f mk/bench-ratio.awk.
$1 ~ /^Benchmark[A-Za-z]+\// {
	n = split($1, p, "/")
	kind = p[n]; sub(/-[0-9]+$/, "", kind)
	variant = p[2]
	for (i = 3; i < n; i++) variant = variant "/" p[i]
	k = variant SUBSEP kind
	vals[k, ++cnt[k]] = $3 + 0
	if (!(variant in seen)) { seen[variant] = 1; order[++nv] = variant }
}
END {
	print ""
	print "full check / raw signature verification (median ns/op over the runs above, same run):"
	for (i = 1; i <= nv; i++) {
		v = order[i]
		if (cnt[v SUBSEP "raw"] && cnt[v SUBSEP "full"]) {
			raw = median(v SUBSEP "raw"); full = median(v SUBSEP "full")
			printf "  %-8s raw %10.0f ns/op   full %10.0f ns/op   ratio %.2fx\n", v, raw, full, full / raw
		}
	}
}

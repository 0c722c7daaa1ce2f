# median(k): the median of vals[k, 1..cnt[k]], for the ratio scripts that
# read benchmark output (the median, not the mean, so that one run disturbed
# by a shared machine does not move the figure).
function median(k,    i, j, m, t, a) {
	m = cnt[k]
	for (i = 1; i <= m; i++) a[i] = vals[k, i]
	for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}

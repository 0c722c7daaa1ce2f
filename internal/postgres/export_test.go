package postgres

// Translate exposes translate to the external tests.
var Translate = translate

// IsRefusalCode reports whether code is in the table of refusals.
func IsRefusalCode(code string) bool { _, ok := refusals[code]; return ok }

// RefusalCodes lists the table of refusals' SQLSTATEs.
func RefusalCodes() []string {
	var out []string
	for c := range refusals {
		out = append(out, c)
	}
	return out
}

// MigrationLockKey exposes the advisory lock key of MigrateUp.
const MigrationLockKey = migrationLockKey

// Package filterdiff checks the SQL filters of regoguard's filter package
// row for row against OPA's full evaluation, on real databases: a seeded
// generator of list policies, callers and rows (Generate), the oracle
// (Oracle), a SQLite runner (modernc.org/sqlite, pure Go) and a real
// PostgreSQL server started for the tests (StartPostgres), and a client of
// OPA's Compile API to hold regoguard's answers beside OPA's.
//
// It is a module of its own so that the library module links no database
// driver.
package filterdiff

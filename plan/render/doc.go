// Package render prints plans, audits and findings for people (text, with
// colour only when asked) and for programs (JSON, SARIF, Markdown). It reads
// the structs of package plan and computes nothing of its own.
package render

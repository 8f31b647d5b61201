// Package repocheck holds tests of the repository itself rather than of
// code: the links of README.md and docs/*.md resolve to files and headings
// that exist, no file cites a document the repository does not have (a
// comment sending its reader to a design note or a section of a facts file
// that only its author had), and no tracked file points at a path on one
// machine. It has no code; its tests need git, since "the repository" is
// what git tracks.
package repocheck

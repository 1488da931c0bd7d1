package controlapi

// ShareWatchChanges turns the encoding of each change once for all
// watchers on or off (off: the baseline of every watcher encoding every
// change itself) and returns the setting it replaced.
func ShareWatchChanges(on bool) bool { return shareChanges.Swap(on) }

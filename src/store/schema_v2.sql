-- Schema version 2: the restore log (every `cms restore`, what it did and from where).
CREATE TABLE restore_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- when the restore started and finished, UTC seconds (finished 0 while running or if killed)
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    file TEXT NOT NULL,
    source_server TEXT NOT NULL,
    -- data categories applied, e.g. 'history,admin'
    categories TEXT NOT NULL,
    filled INTEGER NOT NULL DEFAULT 0,
    replaced INTEGER NOT NULL DEFAULT 0,
    kept INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    skipped_current INTEGER NOT NULL DEFAULT 0,
    -- JSON list of conflicting intervals [{acd, istart}]
    conflict_list TEXT NOT NULL DEFAULT '[]'
);

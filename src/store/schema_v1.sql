-- Schema version 1: the interval tables, their status, the checkpoint and the
-- administration data. Append-only: later versions go in later files (src/store/mod.rs
-- MIGRATIONS). Item columns follow src/items.rs; a test checks the two agree.

-- Intrahour rows: one per ACD, split and interval. istart is the interval start in
-- UTC seconds (unambiguous across DST); row_date/starttime are the local date and HHMM.
CREATE TABLE hsplit (
    acd INTEGER NOT NULL,
    split INTEGER NOT NULL,
    istart INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    starttime INTEGER NOT NULL,
    intrvl INTEGER NOT NULL,
    callsoffered INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    slvlabns INTEGER NOT NULL DEFAULT 0,
    acdcalls1 INTEGER NOT NULL DEFAULT 0,
    acdcalls2 INTEGER NOT NULL DEFAULT 0,
    acdcalls3 INTEGER NOT NULL DEFAULT 0,
    acdcalls4 INTEGER NOT NULL DEFAULT 0,
    acdcalls5 INTEGER NOT NULL DEFAULT 0,
    acdcalls6 INTEGER NOT NULL DEFAULT 0,
    acdcalls7 INTEGER NOT NULL DEFAULT 0,
    acdcalls8 INTEGER NOT NULL DEFAULT 0,
    acdcalls9 INTEGER NOT NULL DEFAULT 0,
    acdcalls10 INTEGER NOT NULL DEFAULT 0,
    abncalls1 INTEGER NOT NULL DEFAULT 0,
    abncalls2 INTEGER NOT NULL DEFAULT 0,
    abncalls3 INTEGER NOT NULL DEFAULT 0,
    abncalls4 INTEGER NOT NULL DEFAULT 0,
    abncalls5 INTEGER NOT NULL DEFAULT 0,
    abncalls6 INTEGER NOT NULL DEFAULT 0,
    abncalls7 INTEGER NOT NULL DEFAULT 0,
    abncalls8 INTEGER NOT NULL DEFAULT 0,
    abncalls9 INTEGER NOT NULL DEFAULT 0,
    abncalls10 INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    outflowcalls INTEGER NOT NULL DEFAULT 0,
    inflowcalls INTEGER NOT NULL DEFAULT 0,
    dequecalls INTEGER NOT NULL DEFAULT 0,
    i_arrived INTEGER NOT NULL DEFAULT 0,
    maxinqueue INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    maxstaffed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, istart, split)
) WITHOUT ROWID;

-- Summary per day; incomplete = number of incomplete intervals.
CREATE TABLE dsplit (
    acd INTEGER NOT NULL,
    split INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    callsoffered INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    slvlabns INTEGER NOT NULL DEFAULT 0,
    acdcalls1 INTEGER NOT NULL DEFAULT 0,
    acdcalls2 INTEGER NOT NULL DEFAULT 0,
    acdcalls3 INTEGER NOT NULL DEFAULT 0,
    acdcalls4 INTEGER NOT NULL DEFAULT 0,
    acdcalls5 INTEGER NOT NULL DEFAULT 0,
    acdcalls6 INTEGER NOT NULL DEFAULT 0,
    acdcalls7 INTEGER NOT NULL DEFAULT 0,
    acdcalls8 INTEGER NOT NULL DEFAULT 0,
    acdcalls9 INTEGER NOT NULL DEFAULT 0,
    acdcalls10 INTEGER NOT NULL DEFAULT 0,
    abncalls1 INTEGER NOT NULL DEFAULT 0,
    abncalls2 INTEGER NOT NULL DEFAULT 0,
    abncalls3 INTEGER NOT NULL DEFAULT 0,
    abncalls4 INTEGER NOT NULL DEFAULT 0,
    abncalls5 INTEGER NOT NULL DEFAULT 0,
    abncalls6 INTEGER NOT NULL DEFAULT 0,
    abncalls7 INTEGER NOT NULL DEFAULT 0,
    abncalls8 INTEGER NOT NULL DEFAULT 0,
    abncalls9 INTEGER NOT NULL DEFAULT 0,
    abncalls10 INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    outflowcalls INTEGER NOT NULL DEFAULT 0,
    inflowcalls INTEGER NOT NULL DEFAULT 0,
    dequecalls INTEGER NOT NULL DEFAULT 0,
    i_arrived INTEGER NOT NULL DEFAULT 0,
    maxinqueue INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    maxstaffed INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, split)
) WITHOUT ROWID;

-- Summary per week (row_date = first day of the week); incomplete = number of incomplete intervals.
CREATE TABLE wsplit (
    acd INTEGER NOT NULL,
    split INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    callsoffered INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    slvlabns INTEGER NOT NULL DEFAULT 0,
    acdcalls1 INTEGER NOT NULL DEFAULT 0,
    acdcalls2 INTEGER NOT NULL DEFAULT 0,
    acdcalls3 INTEGER NOT NULL DEFAULT 0,
    acdcalls4 INTEGER NOT NULL DEFAULT 0,
    acdcalls5 INTEGER NOT NULL DEFAULT 0,
    acdcalls6 INTEGER NOT NULL DEFAULT 0,
    acdcalls7 INTEGER NOT NULL DEFAULT 0,
    acdcalls8 INTEGER NOT NULL DEFAULT 0,
    acdcalls9 INTEGER NOT NULL DEFAULT 0,
    acdcalls10 INTEGER NOT NULL DEFAULT 0,
    abncalls1 INTEGER NOT NULL DEFAULT 0,
    abncalls2 INTEGER NOT NULL DEFAULT 0,
    abncalls3 INTEGER NOT NULL DEFAULT 0,
    abncalls4 INTEGER NOT NULL DEFAULT 0,
    abncalls5 INTEGER NOT NULL DEFAULT 0,
    abncalls6 INTEGER NOT NULL DEFAULT 0,
    abncalls7 INTEGER NOT NULL DEFAULT 0,
    abncalls8 INTEGER NOT NULL DEFAULT 0,
    abncalls9 INTEGER NOT NULL DEFAULT 0,
    abncalls10 INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    outflowcalls INTEGER NOT NULL DEFAULT 0,
    inflowcalls INTEGER NOT NULL DEFAULT 0,
    dequecalls INTEGER NOT NULL DEFAULT 0,
    i_arrived INTEGER NOT NULL DEFAULT 0,
    maxinqueue INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    maxstaffed INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, split)
) WITHOUT ROWID;

-- Summary per month (row_date = first day of the month); incomplete = number of incomplete intervals.
CREATE TABLE msplit (
    acd INTEGER NOT NULL,
    split INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    callsoffered INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    slvlabns INTEGER NOT NULL DEFAULT 0,
    acdcalls1 INTEGER NOT NULL DEFAULT 0,
    acdcalls2 INTEGER NOT NULL DEFAULT 0,
    acdcalls3 INTEGER NOT NULL DEFAULT 0,
    acdcalls4 INTEGER NOT NULL DEFAULT 0,
    acdcalls5 INTEGER NOT NULL DEFAULT 0,
    acdcalls6 INTEGER NOT NULL DEFAULT 0,
    acdcalls7 INTEGER NOT NULL DEFAULT 0,
    acdcalls8 INTEGER NOT NULL DEFAULT 0,
    acdcalls9 INTEGER NOT NULL DEFAULT 0,
    acdcalls10 INTEGER NOT NULL DEFAULT 0,
    abncalls1 INTEGER NOT NULL DEFAULT 0,
    abncalls2 INTEGER NOT NULL DEFAULT 0,
    abncalls3 INTEGER NOT NULL DEFAULT 0,
    abncalls4 INTEGER NOT NULL DEFAULT 0,
    abncalls5 INTEGER NOT NULL DEFAULT 0,
    abncalls6 INTEGER NOT NULL DEFAULT 0,
    abncalls7 INTEGER NOT NULL DEFAULT 0,
    abncalls8 INTEGER NOT NULL DEFAULT 0,
    abncalls9 INTEGER NOT NULL DEFAULT 0,
    abncalls10 INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    outflowcalls INTEGER NOT NULL DEFAULT 0,
    inflowcalls INTEGER NOT NULL DEFAULT 0,
    dequecalls INTEGER NOT NULL DEFAULT 0,
    i_arrived INTEGER NOT NULL DEFAULT 0,
    maxinqueue INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    maxstaffed INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, split)
) WITHOUT ROWID;

-- Intrahour rows: one per ACD, agent, split and interval. istart is the interval start in
-- UTC seconds (unambiguous across DST); row_date/starttime are the local date and HHMM.
CREATE TABLE hagent (
    acd INTEGER NOT NULL,
    agent INTEGER NOT NULL,
    split INTEGER NOT NULL,
    istart INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    starttime INTEGER NOT NULL,
    intrvl INTEGER NOT NULL,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    ringcalls INTEGER NOT NULL DEFAULT 0,
    ringtime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    holdacdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, istart, agent, split)
) WITHOUT ROWID;

-- Summary per day; incomplete = number of incomplete intervals.
CREATE TABLE dagent (
    acd INTEGER NOT NULL,
    agent INTEGER NOT NULL,
    split INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    ringcalls INTEGER NOT NULL DEFAULT 0,
    ringtime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    holdacdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, agent, split)
) WITHOUT ROWID;

-- Summary per week (row_date = first day of the week); incomplete = number of incomplete intervals.
CREATE TABLE wagent (
    acd INTEGER NOT NULL,
    agent INTEGER NOT NULL,
    split INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    ringcalls INTEGER NOT NULL DEFAULT 0,
    ringtime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    holdacdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, agent, split)
) WITHOUT ROWID;

-- Summary per month (row_date = first day of the month); incomplete = number of incomplete intervals.
CREATE TABLE magent (
    acd INTEGER NOT NULL,
    agent INTEGER NOT NULL,
    split INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    ringcalls INTEGER NOT NULL DEFAULT 0,
    ringtime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    holdcalls INTEGER NOT NULL DEFAULT 0,
    holdacdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    conference INTEGER NOT NULL DEFAULT 0,
    i_stafftime INTEGER NOT NULL DEFAULT 0,
    i_availtime INTEGER NOT NULL DEFAULT 0,
    i_acdtime INTEGER NOT NULL DEFAULT 0,
    i_acwtime INTEGER NOT NULL DEFAULT 0,
    i_ringtime INTEGER NOT NULL DEFAULT 0,
    i_othertime INTEGER NOT NULL DEFAULT 0,
    i_auxtime INTEGER NOT NULL DEFAULT 0,
    i_auxtime0 INTEGER NOT NULL DEFAULT 0,
    i_auxtime1 INTEGER NOT NULL DEFAULT 0,
    i_auxtime2 INTEGER NOT NULL DEFAULT 0,
    i_auxtime3 INTEGER NOT NULL DEFAULT 0,
    i_auxtime4 INTEGER NOT NULL DEFAULT 0,
    i_auxtime5 INTEGER NOT NULL DEFAULT 0,
    i_auxtime6 INTEGER NOT NULL DEFAULT 0,
    i_auxtime7 INTEGER NOT NULL DEFAULT 0,
    i_auxtime8 INTEGER NOT NULL DEFAULT 0,
    i_auxtime9 INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, agent, split)
) WITHOUT ROWID;

-- Intrahour rows: one per ACD, vdn and interval. istart is the interval start in
-- UTC seconds (unambiguous across DST); row_date/starttime are the local date and HHMM.
CREATE TABLE hvdn (
    acd INTEGER NOT NULL,
    vdn INTEGER NOT NULL,
    istart INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    starttime INTEGER NOT NULL,
    intrvl INTEGER NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    busycalls INTEGER NOT NULL DEFAULT 0,
    disccalls INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, istart, vdn)
) WITHOUT ROWID;

-- Summary per day; incomplete = number of incomplete intervals.
CREATE TABLE dvdn (
    acd INTEGER NOT NULL,
    vdn INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    busycalls INTEGER NOT NULL DEFAULT 0,
    disccalls INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, vdn)
) WITHOUT ROWID;

-- Summary per week (row_date = first day of the week); incomplete = number of incomplete intervals.
CREATE TABLE wvdn (
    acd INTEGER NOT NULL,
    vdn INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    busycalls INTEGER NOT NULL DEFAULT 0,
    disccalls INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, vdn)
) WITHOUT ROWID;

-- Summary per month (row_date = first day of the month); incomplete = number of incomplete intervals.
CREATE TABLE mvdn (
    acd INTEGER NOT NULL,
    vdn INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    acdcalls INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    abntime INTEGER NOT NULL DEFAULT 0,
    anstime INTEGER NOT NULL DEFAULT 0,
    acceptable INTEGER NOT NULL DEFAULT 0,
    acdtime INTEGER NOT NULL DEFAULT 0,
    acwtime INTEGER NOT NULL DEFAULT 0,
    holdtime INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    busycalls INTEGER NOT NULL DEFAULT 0,
    disccalls INTEGER NOT NULL DEFAULT 0,
    maxocwtime INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, vdn)
) WITHOUT ROWID;

-- Intrahour rows: one per ACD, tkgrp and interval. istart is the interval start in
-- UTC seconds (unambiguous across DST); row_date/starttime are the local date and HHMM.
CREATE TABLE htkgrp (
    acd INTEGER NOT NULL,
    tkgrp INTEGER NOT NULL,
    istart INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    starttime INTEGER NOT NULL,
    intrvl INTEGER NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    intime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    i_inocc INTEGER NOT NULL DEFAULT 0,
    allinusetime INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, istart, tkgrp)
) WITHOUT ROWID;

-- Summary per day; incomplete = number of incomplete intervals.
CREATE TABLE dtkgrp (
    acd INTEGER NOT NULL,
    tkgrp INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    intime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    i_inocc INTEGER NOT NULL DEFAULT 0,
    allinusetime INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, tkgrp)
) WITHOUT ROWID;

-- Summary per week (row_date = first day of the week); incomplete = number of incomplete intervals.
CREATE TABLE wtkgrp (
    acd INTEGER NOT NULL,
    tkgrp INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    intime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    i_inocc INTEGER NOT NULL DEFAULT 0,
    allinusetime INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, tkgrp)
) WITHOUT ROWID;

-- Summary per month (row_date = first day of the month); incomplete = number of incomplete intervals.
CREATE TABLE mtkgrp (
    acd INTEGER NOT NULL,
    tkgrp INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    incalls INTEGER NOT NULL DEFAULT 0,
    intime INTEGER NOT NULL DEFAULT 0,
    abncalls INTEGER NOT NULL DEFAULT 0,
    i_inocc INTEGER NOT NULL DEFAULT 0,
    allinusetime INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (acd, row_date, tkgrp)
) WITHOUT ROWID;

-- One row per ACD and closed interval: is it exact, and if not, why.
CREATE TABLE interval_status (
    acd INTEGER NOT NULL,
    istart INTEGER NOT NULL,
    intrvl INTEGER NOT NULL,
    row_date TEXT NOT NULL,
    starttime INTEGER NOT NULL,
    -- 'complete' or 'incomplete'
    status TEXT NOT NULL CHECK (status IN ('complete', 'incomplete')),
    -- comma-separated reasons, empty when complete (docs/data-items.md, "Interval status")
    reasons TEXT NOT NULL DEFAULT '',
    -- switch epoch and sequence range of the events that contributed (0 when none)
    epoch INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- 'collected' or 'restored:<server id>'
    source TEXT NOT NULL,
    -- number of interval rows over all h* tables, and the blake3 content checksum (hex)
    row_count INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    -- when this row was last written, UTC seconds (drives incremental backups)
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (acd, istart)
) WITHOUT ROWID;
CREATE INDEX interval_status_updated ON interval_status (updated_at);

-- The collector's durable position: aggregation state after event seq of epoch.
CREATE TABLE checkpoint (
    acd INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    -- UTC start of the interval being collected (0 before the first event)
    open_istart INTEGER NOT NULL DEFAULT 0,
    state BLOB NOT NULL,
    saved_at INTEGER NOT NULL
);

-- Link state per ACD for `cms status`.
CREATE TABLE link_state (
    acd INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    since INTEGER NOT NULL,
    peer TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);

-- ACD administration data: dictionary names and call profiles, from switch translations.
CREATE TABLE skill_def (
    acd INTEGER NOT NULL,
    skill INTEGER NOT NULL,
    service_level INTEGER NOT NULL,
    -- PERIOD1..PERIOD9 in seconds, comma-separated
    periods TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (acd, skill)
);
CREATE TABLE vdn_def (
    acd INTEGER NOT NULL,
    vdn INTEGER NOT NULL,
    service_level INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (acd, vdn)
);
CREATE TABLE tkgrp_def (
    acd INTEGER NOT NULL,
    tkgrp INTEGER NOT NULL,
    trunks INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (acd, tkgrp)
);

-- Local system administration data: this server's identity and settings.
CREATE TABLE local_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Which summary periods have been built from their intervals (retention never purges
-- intervals of a day whose daily summary is not built yet).
CREATE TABLE summary_state (
    acd INTEGER NOT NULL,
    -- 'day', 'week' or 'month'
    period TEXT NOT NULL,
    row_date TEXT NOT NULL,
    built_at INTEGER NOT NULL,
    PRIMARY KEY (acd, period, row_date)
);

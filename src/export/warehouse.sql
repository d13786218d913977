-- The cms warehouse (docs/warehouse.md): one PostgreSQL database fed by `cms export
-- --warehouse` on both servers of every pair of every site. Applied by every export
-- (idempotent: IF NOT EXISTS) under an advisory lock; an operator may also run it with
-- psql beforehand and grant the exporting role INSERT, UPDATE, DELETE and SELECT only.
--
-- Keys: (site, acd, istart) for an interval; the interval tables add their entity key
-- (split; agent and split; vdn; tkgrp). `istart` is the interval's start in UTC seconds,
-- as in the servers' databases; `interval_start` is the same instant as timestamptz.

CREATE TABLE IF NOT EXISTS cms_warehouse_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO cms_warehouse_meta VALUES ('layout', '1') ON CONFLICT (key) DO NOTHING;

-- One row per interval of every site: the copy the warehouse holds, whose rows are in the
-- cms_h* tables. The rule (docs/warehouse.md, "The rule"): a complete copy replaces an
-- incomplete one, never the reverse; of two incomplete copies the larger (row_count,
-- checksum) is kept, so the result does not depend on which server exports first; two
-- complete copies that differ are a conflict (cms_conflict), the first one stays.
CREATE TABLE IF NOT EXISTS cms_interval (
    site text NOT NULL,
    acd integer NOT NULL,
    istart bigint NOT NULL,
    interval_start timestamptz NOT NULL,
    -- the site's local date and start (HHMM) of the interval, and its length in minutes
    row_date date NOT NULL,
    starttime integer NOT NULL,
    intrvl integer NOT NULL,
    status text NOT NULL CHECK (status IN ('complete', 'incomplete')),
    reasons text NOT NULL,
    row_count bigint NOT NULL,
    -- blake3 of the interval's rows (docs/data-items.md, "Interval status")
    checksum text NOT NULL,
    -- the server whose copy this is, and where that server's copy came from
    -- ('collected' or 'restored:<server>')
    server text NOT NULL,
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, acd, istart)
);
CREATE INDEX IF NOT EXISTS cms_interval_date ON cms_interval (row_date, site);

-- Two complete copies of one interval with different contents: reported, never resolved
-- by guessing (DOMAIN.md, promise 2). `checksum_kept` is in cms_interval.
CREATE TABLE IF NOT EXISTS cms_conflict (
    site text NOT NULL,
    acd integer NOT NULL,
    istart bigint NOT NULL,
    checksum_kept text NOT NULL,
    checksum_other text NOT NULL,
    server_other text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, acd, istart, checksum_other)
);

-- hsplit: one row per (site, ACD, interval, split), items as in docs/data-items.md.
CREATE TABLE IF NOT EXISTS cms_hsplit (
    site text NOT NULL,
    acd integer NOT NULL,
    istart bigint NOT NULL,
    split bigint NOT NULL,
    status text NOT NULL,
    checksum text NOT NULL,
    callsoffered bigint NOT NULL, acdcalls bigint NOT NULL, abncalls bigint NOT NULL,
    abntime bigint NOT NULL, anstime bigint NOT NULL, maxocwtime bigint NOT NULL,
    acceptable bigint NOT NULL, slvlabns bigint NOT NULL, acdcalls1 bigint NOT NULL,
    acdcalls2 bigint NOT NULL, acdcalls3 bigint NOT NULL, acdcalls4 bigint NOT NULL,
    acdcalls5 bigint NOT NULL, acdcalls6 bigint NOT NULL, acdcalls7 bigint NOT NULL,
    acdcalls8 bigint NOT NULL, acdcalls9 bigint NOT NULL, acdcalls10 bigint NOT NULL,
    abncalls1 bigint NOT NULL, abncalls2 bigint NOT NULL, abncalls3 bigint NOT NULL,
    abncalls4 bigint NOT NULL, abncalls5 bigint NOT NULL, abncalls6 bigint NOT NULL,
    abncalls7 bigint NOT NULL, abncalls8 bigint NOT NULL, abncalls9 bigint NOT NULL,
    abncalls10 bigint NOT NULL, acdtime bigint NOT NULL, acwtime bigint NOT NULL,
    holdtime bigint NOT NULL, holdcalls bigint NOT NULL, transferred bigint NOT NULL,
    conference bigint NOT NULL, outflowcalls bigint NOT NULL, inflowcalls bigint NOT NULL,
    dequecalls bigint NOT NULL, i_arrived bigint NOT NULL, maxinqueue bigint NOT NULL,
    i_stafftime bigint NOT NULL, i_availtime bigint NOT NULL, i_acdtime bigint NOT NULL,
    i_acwtime bigint NOT NULL, i_ringtime bigint NOT NULL, i_othertime bigint NOT NULL,
    i_auxtime bigint NOT NULL, i_auxtime0 bigint NOT NULL, i_auxtime1 bigint NOT NULL,
    i_auxtime2 bigint NOT NULL, i_auxtime3 bigint NOT NULL, i_auxtime4 bigint NOT NULL,
    i_auxtime5 bigint NOT NULL, i_auxtime6 bigint NOT NULL, i_auxtime7 bigint NOT NULL,
    i_auxtime8 bigint NOT NULL, i_auxtime9 bigint NOT NULL, maxstaffed bigint NOT NULL,
    PRIMARY KEY (site, acd, istart, split)
);

-- hagent: one row per (site, ACD, interval, agent, split), items as in docs/data-items.md.
CREATE TABLE IF NOT EXISTS cms_hagent (
    site text NOT NULL,
    acd integer NOT NULL,
    istart bigint NOT NULL,
    agent bigint NOT NULL,
    split bigint NOT NULL,
    status text NOT NULL,
    checksum text NOT NULL,
    acdcalls bigint NOT NULL, acdtime bigint NOT NULL, acwtime bigint NOT NULL,
    ringcalls bigint NOT NULL, ringtime bigint NOT NULL, abncalls bigint NOT NULL,
    holdcalls bigint NOT NULL, holdacdtime bigint NOT NULL, transferred bigint NOT NULL,
    conference bigint NOT NULL, i_stafftime bigint NOT NULL, i_availtime bigint NOT NULL,
    i_acdtime bigint NOT NULL, i_acwtime bigint NOT NULL, i_ringtime bigint NOT NULL,
    i_othertime bigint NOT NULL, i_auxtime bigint NOT NULL, i_auxtime0 bigint NOT NULL,
    i_auxtime1 bigint NOT NULL, i_auxtime2 bigint NOT NULL, i_auxtime3 bigint NOT NULL,
    i_auxtime4 bigint NOT NULL, i_auxtime5 bigint NOT NULL, i_auxtime6 bigint NOT NULL,
    i_auxtime7 bigint NOT NULL, i_auxtime8 bigint NOT NULL, i_auxtime9 bigint NOT NULL,
    PRIMARY KEY (site, acd, istart, agent, split)
);

-- hvdn: one row per (site, ACD, interval, vdn), items as in docs/data-items.md.
CREATE TABLE IF NOT EXISTS cms_hvdn (
    site text NOT NULL,
    acd integer NOT NULL,
    istart bigint NOT NULL,
    vdn bigint NOT NULL,
    status text NOT NULL,
    checksum text NOT NULL,
    incalls bigint NOT NULL, acdcalls bigint NOT NULL, abncalls bigint NOT NULL,
    abntime bigint NOT NULL, anstime bigint NOT NULL, acceptable bigint NOT NULL,
    acdtime bigint NOT NULL, acwtime bigint NOT NULL, holdtime bigint NOT NULL,
    transferred bigint NOT NULL, busycalls bigint NOT NULL, disccalls bigint NOT NULL,
    maxocwtime bigint NOT NULL,
    PRIMARY KEY (site, acd, istart, vdn)
);

-- htkgrp: one row per (site, ACD, interval, tkgrp), items as in docs/data-items.md.
CREATE TABLE IF NOT EXISTS cms_htkgrp (
    site text NOT NULL,
    acd integer NOT NULL,
    istart bigint NOT NULL,
    tkgrp bigint NOT NULL,
    status text NOT NULL,
    checksum text NOT NULL,
    incalls bigint NOT NULL, intime bigint NOT NULL, abncalls bigint NOT NULL,
    i_inocc bigint NOT NULL, allinusetime bigint NOT NULL,
    PRIMARY KEY (site, acd, istart, tkgrp)
);

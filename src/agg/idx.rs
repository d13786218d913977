//! Column indices of the item catalogue (src/items.rs), for the hot path.

// Written from the catalogue in src/items.rs, one constant per item in catalogue order
// (N: the family's item count). `agg::tests::every_index_matches_the_catalogue` reads
// this file and checks every constant against the catalogue.

pub mod split {
    pub const N: usize = 57;
    pub const CALLSOFFERED: usize = 0;
    pub const ACDCALLS: usize = 1;
    pub const ABNCALLS: usize = 2;
    pub const ABNTIME: usize = 3;
    pub const ANSTIME: usize = 4;
    pub const MAXOCWTIME: usize = 5;
    pub const ACCEPTABLE: usize = 6;
    pub const SLVLABNS: usize = 7;
    pub const ACDCALLS1: usize = 8;
    pub const ACDCALLS2: usize = 9;
    pub const ACDCALLS3: usize = 10;
    pub const ACDCALLS4: usize = 11;
    pub const ACDCALLS5: usize = 12;
    pub const ACDCALLS6: usize = 13;
    pub const ACDCALLS7: usize = 14;
    pub const ACDCALLS8: usize = 15;
    pub const ACDCALLS9: usize = 16;
    pub const ACDCALLS10: usize = 17;
    pub const ABNCALLS1: usize = 18;
    pub const ABNCALLS2: usize = 19;
    pub const ABNCALLS3: usize = 20;
    pub const ABNCALLS4: usize = 21;
    pub const ABNCALLS5: usize = 22;
    pub const ABNCALLS6: usize = 23;
    pub const ABNCALLS7: usize = 24;
    pub const ABNCALLS8: usize = 25;
    pub const ABNCALLS9: usize = 26;
    pub const ABNCALLS10: usize = 27;
    pub const ACDTIME: usize = 28;
    pub const ACWTIME: usize = 29;
    pub const HOLDTIME: usize = 30;
    pub const HOLDCALLS: usize = 31;
    pub const TRANSFERRED: usize = 32;
    pub const CONFERENCE: usize = 33;
    pub const OUTFLOWCALLS: usize = 34;
    pub const INFLOWCALLS: usize = 35;
    pub const DEQUECALLS: usize = 36;
    pub const I_ARRIVED: usize = 37;
    pub const MAXINQUEUE: usize = 38;
    pub const I_STAFFTIME: usize = 39;
    pub const I_AVAILTIME: usize = 40;
    pub const I_ACDTIME: usize = 41;
    pub const I_ACWTIME: usize = 42;
    pub const I_RINGTIME: usize = 43;
    pub const I_OTHERTIME: usize = 44;
    pub const I_AUXTIME: usize = 45;
    pub const I_AUXTIME0: usize = 46;
    pub const I_AUXTIME1: usize = 47;
    pub const I_AUXTIME2: usize = 48;
    pub const I_AUXTIME3: usize = 49;
    pub const I_AUXTIME4: usize = 50;
    pub const I_AUXTIME5: usize = 51;
    pub const I_AUXTIME6: usize = 52;
    pub const I_AUXTIME7: usize = 53;
    pub const I_AUXTIME8: usize = 54;
    pub const I_AUXTIME9: usize = 55;
    pub const MAXSTAFFED: usize = 56;
}
pub mod agent {
    pub const N: usize = 27;
    pub const ACDCALLS: usize = 0;
    pub const ACDTIME: usize = 1;
    pub const ACWTIME: usize = 2;
    pub const RINGCALLS: usize = 3;
    pub const RINGTIME: usize = 4;
    pub const ABNCALLS: usize = 5;
    pub const HOLDCALLS: usize = 6;
    pub const HOLDACDTIME: usize = 7;
    pub const TRANSFERRED: usize = 8;
    pub const CONFERENCE: usize = 9;
    pub const I_STAFFTIME: usize = 10;
    pub const I_AVAILTIME: usize = 11;
    pub const I_ACDTIME: usize = 12;
    pub const I_ACWTIME: usize = 13;
    pub const I_RINGTIME: usize = 14;
    pub const I_OTHERTIME: usize = 15;
    pub const I_AUXTIME: usize = 16;
    pub const I_AUXTIME0: usize = 17;
    pub const I_AUXTIME1: usize = 18;
    pub const I_AUXTIME2: usize = 19;
    pub const I_AUXTIME3: usize = 20;
    pub const I_AUXTIME4: usize = 21;
    pub const I_AUXTIME5: usize = 22;
    pub const I_AUXTIME6: usize = 23;
    pub const I_AUXTIME7: usize = 24;
    pub const I_AUXTIME8: usize = 25;
    pub const I_AUXTIME9: usize = 26;
}
pub mod vdn {
    pub const N: usize = 13;
    pub const INCALLS: usize = 0;
    pub const ACDCALLS: usize = 1;
    pub const ABNCALLS: usize = 2;
    pub const ABNTIME: usize = 3;
    pub const ANSTIME: usize = 4;
    pub const ACCEPTABLE: usize = 5;
    pub const ACDTIME: usize = 6;
    pub const ACWTIME: usize = 7;
    pub const HOLDTIME: usize = 8;
    pub const TRANSFERRED: usize = 9;
    pub const BUSYCALLS: usize = 10;
    pub const DISCCALLS: usize = 11;
    pub const MAXOCWTIME: usize = 12;
}
pub mod tkgrp {
    pub const N: usize = 5;
    pub const INCALLS: usize = 0;
    pub const INTIME: usize = 1;
    pub const ABNCALLS: usize = 2;
    pub const I_INOCC: usize = 3;
    pub const ALLINUSETIME: usize = 4;
}

-- Where the last fraud scan left each category of an edition: the incremental scan's
-- high-water marks (voting/antifraud/scan_marks.py). A category's mark is a fingerprint
-- of the votes the detectors read in it (how many, and a digest of which, voided ones
-- left out); two more rows per edition hold what every category's findings also depend
-- on: '*' (the thresholds, the detectors' code, the approved declarations) and
-- '+verified' (the confirmations the bulk-verification detector reads). A scan redoes a
-- category only when its mark moved, and writes the marks in its own transaction.
CREATE TABLE fraud_scan_marks (
    edition_id  integer NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    category    text NOT NULL,
    fingerprint text NOT NULL,
    scanned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (edition_id, category)
);

-- 0011's rule: exactly what the code does. The scan inserts and moves its marks; it
-- never deletes one (an edition's go with it).
REVOKE ALL ON fraud_scan_marks FROM wsis_app;
GRANT SELECT, INSERT ON fraud_scan_marks TO wsis_app;
GRANT UPDATE (fingerprint, scanned_at) ON fraud_scan_marks TO wsis_app;

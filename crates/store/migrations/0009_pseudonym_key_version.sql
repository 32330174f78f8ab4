-- The version of the pseudonym key that made each line's patient_pseudonym
-- (pseudonym.key_version, carried by the valid record's header
-- distans-pseudonym-key-version). Lines written before it were all made with
-- version 1. After a rotation, pseudonyms of different versions never match
-- by equality: reports that count patients across versions join through an
-- explicit mapping (README, "Rotating the pseudonym key").
ALTER TABLE invoice_line_versions ADD COLUMN pseudonym_key_version UInt16 DEFAULT 1;

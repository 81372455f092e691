#!/usr/bin/env python3
"""Generate libdeid's Annex E table and keyword dictionary from the DICOM standard.

Writes two committed C files (the build never runs this script):
  annex_e_table.c   PS3.15 Table E.1-1 (actions per attribute and per option), sorted by tag
  dict_keywords.c   PS3.6 keyword -> tag/VR table for recipes that name attributes by keyword

Inputs (defaults under ../shared/data/profile relative to the repository root):
  --json   ps315_table_E1-1_2024b.json  Table E.1-1, DICOM 2024b (Innolitics dicom-standard): primary
  --csv    ps315_table_E1-1_2025c.csv   Table E.1-1, DICOM 2025c (machine-scraped CSV): cross-check;
                                         rows new in 2025c with a valid tag are added
  --dict   ps36_attributes.json         PS3.6 data dictionary (Innolitics dicom-standard)

Differences between the two editions, and libdeid's amendments (AMENDMENTS below), are printed
on stdout. Standard library only:
    /usr/bin/python3 libdeid/profile/gen_annex_e.py
"""

import argparse
import csv
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "profile")

# Option columns of Table E.1-1, with the short C macro the generated file uses for each and
# (OPTION_FLAGS) the DEID_OPT_* flag it stands for.
OPTION_COLUMNS = [
    ("rtnSafePrivOpt", "O_SAFE_PRIVATE"),
    ("rtnUIDsOpt", "O_UIDS"),
    ("rtnDevIdOpt", "O_DEVICE"),
    ("rtnInstIdOpt", "O_INSTITUTION"),
    ("rtnPatCharsOpt", "O_PATIENT_CHARS"),
    ("rtnLongFullDatesOpt", "O_FULL_DATES"),
    ("rtnLongModifDatesOpt", "O_MODIFIED_DATES"),
    ("cleanDescOpt", "O_CLEAN_DESC"),
    ("cleanStructContOpt", "O_CLEAN_STRUCT"),
    ("cleanGraphOpt", "O_CLEAN_GRAPHICS"),
]
OPTION_FLAGS = ["DEID_OPT_RETAIN_SAFE_PRIVATE", "DEID_OPT_RETAIN_UIDS",
                "DEID_OPT_RETAIN_DEVICE_IDENTITY", "DEID_OPT_RETAIN_INSTITUTION_IDENTITY",
                "DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS", "DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES",
                "DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES", "DEID_OPT_CLEAN_DESCRIPTORS",
                "DEID_OPT_CLEAN_STRUCTURED_CONTENT", "DEID_OPT_CLEAN_GRAPHICS"]
CSV_COLUMNS = ["Basic Prof.", "Rtn. Safe Priv. Opt.", "Rtn. UIDs Opt.", "Rtn. Dev. Id. Opt.",
               "Rtn. Inst. Id. Opt.", "Rtn. Pat. Chars. Opt.", "Rtn. Long. Full Dates Opt.",
               "Rtn. Long. Modif. Dates Opt.", "Clean Desc. Opt.", "Clean Struct. Cont. Opt.",
               "Clean Graph. Opt."]
BASIC_ACTIONS = {"X": "A_X", "Z": "A_Z", "D": "A_D", "K": "A_K", "C": "A_C", "U": "A_U",
                 "X/Z": "A_XZ", "X/D": "A_XD", "Z/D": "A_ZD", "X/Z/D": "A_XZD",
                 "X/Z/U*": "A_XZU"}
# libdeid's amendments to the standard's basic action, each with its reason: attributes the
# table removes (X) although an IOD requires them (Type 1), so that removing them would make the
# output non-conformant. A dummy hides the value just as well.
AMENDMENTS = {
    "(0070,0082)": ("X", "D", "Type 1 in Presentation State Identification"),  # Creation Date
    "(0070,0083)": ("X", "D", "Type 1 in Presentation State Identification"),  # Creation Time
}
TAG_RE = re.compile(r"^\(([0-9A-Fa-fXx]{4}),([0-9A-Fa-fXx]{4})\)$")
PRIVATE_ROW = "(GGGG,EEEE) WHERE GGGG IS ODD"


def parse_tag(text):
    """(tag, mask) for "(GGGG,EEEE)" where x digits are wildcards; None when not a tag."""
    m = TAG_RE.match(text.strip())
    if not m:
        return None
    digits = (m.group(1) + m.group(2)).upper()
    tag = mask = 0
    for d in digits:
        tag <<= 4
        mask <<= 4
        if d != "X":
            tag |= int(d, 16)
            mask |= 0xF
    return tag, mask


def clean_name(name):
    name = " ".join(name.split())
    name = re.sub(r"\s*\(see Note \d+\)", "", name)
    return name.replace("*/", "* /")


def read_json_table(path):
    rows = {}
    for r in json.load(open(path, encoding="utf-8")):
        tag = r["tag"].strip().upper()
        acts = [r["basicProfile"].strip()] + [r.get(c, "").strip() for c, _ in OPTION_COLUMNS]
        rows[tag] = (clean_name(r["name"]), acts)
    return rows


def read_csv_table(path):
    rows = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            tag = r["Tag"].strip().upper()
            rows[tag] = (clean_name(r["Attribute Name"]), [r[c].strip() for c in CSV_COLUMNS])
    return rows


def check_actions(tag, acts, where):
    if acts[0] not in BASIC_ACTIONS:
        sys.exit("%s: %s: unknown basic action %r" % (where, tag, acts[0]))
    for (col, _), a in zip(OPTION_COLUMNS, acts[1:]):
        if a not in ("", "K", "C"):
            sys.exit("%s: %s: unknown %s action %r" % (where, tag, col, a))


def merge(primary, secondary):
    """Rows of the primary edition, plus valid rows only the secondary has. Prints differences."""
    merged = dict(primary)
    print("Table E.1-1: %d rows in 2024b, %d rows in 2025c" % (len(primary), len(secondary)))
    for tag in sorted(set(primary) - set(secondary)):
        print("  only in 2024b (kept): %s %s" % (tag, primary[tag][0]))
    for tag in sorted(set(secondary) - set(primary)):
        name, acts = secondary[tag]
        if tag != PRIVATE_ROW and parse_tag(tag) is None:
            print("  only in 2025c, invalid tag (skipped): %s %s" % (tag, name))
            continue
        print("  only in 2025c (added): %s %s basic=%s %s" % (
            tag, name, acts[0],
            " ".join("%s=%s" % (c, a) for (c, _), a in zip(OPTION_COLUMNS, acts[1:]) if a)))
        merged[tag] = (name, acts)
    for tag in sorted(set(primary) & set(secondary)):
        if primary[tag][1] != secondary[tag][1]:
            # The 2024b JSON is the reviewed source; the 2025c CSV is machine-scraped, so a
            # disagreement keeps 2024b and is reported for a human to check.
            print("  action differs (2024b kept): %s %s 2024b=%s 2025c=%s" % (
                tag, primary[tag][0], primary[tag][1], secondary[tag][1]))
        elif primary[tag][0].lower() != secondary[tag][0].lower():
            print("  name differs: %s %r / %r" % (tag, primary[tag][0], secondary[tag][0]))
    return merged


def amend(rows):
    """Apply AMENDMENTS (checking that the table still says what they amend)."""
    for tag, (was, now, why) in AMENDMENTS.items():
        name, acts = rows[tag]
        if acts[0] != was:
            sys.exit("%s: amendment expects basic action %s, the table says %s: review it" % (
                tag, was, acts[0]))
        rows[tag] = (name + " (libdeid: %s -> %s, %s)" % (was, now, why), [now] + acts[1:])
        print("  amended: %s %s basic %s -> %s (%s)" % (tag, name, was, now, why))


def row_c(tag, mask, name, acts, new):
    keep = [m for (_, m), a in zip(OPTION_COLUMNS, acts[1:]) if a == "K"]
    clean = [m for (_, m), a in zip(OPTION_COLUMNS, acts[1:]) if a == "C"]
    comment = name + (" (2025c)" if new else "")
    fields = "0x%08Xu, " % tag
    if mask is not None:
        fields += "0x%08Xu, " % mask
    fields += "%s, %s, %s" % (BASIC_ACTIONS[acts[0]], " | ".join(keep) or "0",
                              " | ".join(clean) or "0")
    return "    {%s}, /* %s */\n" % (fields, comment)


def write_table(path, rows, new_tags, inputs):
    exact, masked = [], []
    for tag_text, (name, acts) in rows.items():
        if tag_text == PRIVATE_ROW:
            continue  # private attributes: handled by the engine (profile/engine.c)
        tag, mask = parse_tag(tag_text)
        (exact if mask == 0xFFFFFFFF else masked).append((tag, mask, name, acts, tag_text))
    exact.sort()
    masked.sort()
    out = ["/* Generated by libdeid/profile/gen_annex_e.py from %s. Do not edit. */\n" % inputs,
           "/* DICOM PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes):\n",
           " * basic profile action and, per option, K (keep) or C (clean). Content from the DICOM\n",
           " * Standard (NEMA); libdeid's amendments (AMENDMENTS in the generator) say so in their\n",
           " * comment. Private attributes (odd groups) are handled in engine.c. */\n",
           '#include "deid/profile.h"\n#include "profile/annex_e.h"\n\n']
    for (_, m), flag in zip(OPTION_COLUMNS, OPTION_FLAGS):
        out.append("#define %s %s\n" % (m, flag))
    out.append("\nconst deid_annex_e_row deid__annex_e_rows[] = {\n")
    for tag, _, name, acts, tt in exact:
        out.append(row_c(tag, None, name, acts, tt in new_tags))
    out.append("};\nconst size_t deid__annex_e_count = sizeof deid__annex_e_rows / "
               "sizeof deid__annex_e_rows[0];\n\n")
    out.append("/* Rows whose tag has wildcards: a tag t matches when (t & mask) == tag. */\n")
    out.append("const deid_annex_e_masked_row deid__annex_e_masked[] = {\n")
    for tag, mask, name, acts, tt in masked:
        out.append(row_c(tag, mask, name, acts, tt in new_tags))
    out.append("};\nconst size_t deid__annex_e_masked_count = sizeof deid__annex_e_masked / "
               "sizeof deid__annex_e_masked[0];\n")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(out)
    print("wrote %s: %d rows, %d masked rows" % (path, len(exact), len(masked)))


def vr_code(vr):
    vr = vr.strip()
    if re.fullmatch(r"[A-Z]{2}( or .*)?", vr):
        return "VR('%s', '%s')" % (vr[0], vr[1])  # several VRs: the first one
    return "VR('U', 'N')"


def write_dict(path, dict_path, inputs):
    entries = []
    for r in json.load(open(dict_path, encoding="utf-8")):
        parsed = parse_tag(r["tag"])
        kw = r["keyword"].strip()
        if parsed is None or parsed[1] != 0xFFFFFFFF or not kw:
            continue  # wildcard (repeating group) or unnamed entries: not addressable by keyword
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", kw):
            sys.exit("%s: unexpected keyword %r" % (dict_path, kw))
        entries.append((parsed[0], kw, vr_code(r["valueRepresentation"])))
    entries.sort()
    out = ["/* Generated by libdeid/profile/gen_annex_e.py from %s. Do not edit. */\n" % inputs,
           "/* DICOM PS3.6 data dictionary: keyword and VR of every attribute with a fixed tag,\n",
           " * sorted by tag, and an index sorted by keyword. Content from the DICOM Standard. */\n",
           '#include "profile/annex_e.h"\n\n',
           "#define VR(a, b) DEID_VR(a, b)\n\n",
           "const deid_dict_entry deid__dict_entries[] = {\n"]
    for tag, kw, vr in entries:
        out.append('    {0x%08Xu, %s, "%s"},\n' % (tag, vr, kw))
    out.append("};\nconst size_t deid__dict_count = sizeof deid__dict_entries / "
               "sizeof deid__dict_entries[0];\n\n")
    order = sorted(range(len(entries)), key=lambda i: entries[i][1].encode("ascii"))
    out.append("/* Indices into deid__dict_entries, sorted by keyword (strcmp order). */\n")
    out.append("const uint16_t deid__dict_by_keyword[] = {\n")
    for i in range(0, len(order), 12):
        out.append("    " + " ".join("%d," % k for k in order[i:i + 12]) + "\n")
    out.append("};\n")
    if len(entries) >= 65536:
        sys.exit("dictionary too large for uint16 indices")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(out)
    print("wrote %s: %d keywords" % (path, len(entries)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=os.path.join(DATA, "ps315_table_E1-1_2024b.json"))
    ap.add_argument("--csv", default=os.path.join(DATA, "ps315_table_E1-1_2025c.csv"))
    ap.add_argument("--dict", default=os.path.join(DATA, "ps36_attributes.json"))
    ap.add_argument("--out", default=HERE, help="directory of the generated .c files")
    args = ap.parse_args()

    primary = read_json_table(args.json)
    secondary = read_csv_table(args.csv)
    for where, rows in (("2024b", primary), ("2025c", secondary)):
        for tag, (_, acts) in rows.items():
            check_actions(tag, acts, where)
    rows = merge(primary, secondary)
    amend(rows)
    new_tags = set(rows) - set(primary)
    table_inputs = "%s (2024b, primary) and %s (2025c, cross-check)" % (
        os.path.basename(args.json), os.path.basename(args.csv))
    write_table(os.path.join(args.out, "annex_e_table.c"), rows, new_tags, table_inputs)
    write_dict(os.path.join(args.out, "dict_keywords.c"), args.dict, os.path.basename(args.dict))


if __name__ == "__main__":
    main()

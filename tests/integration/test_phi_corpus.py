"""deid-header over the synthetic PHI corpus (tests/generators/make_phi_corpus.py): no PHI left
anywhere, kept attributes untouched, references between files intact, keyed pseudonyms
reproducible, and the Annex E options that retain patient characteristics or shift dates."""
import csv
import os

import pydicom
import pytest

import deidtest as dt


@pytest.fixture(scope="module")
def work():
    return dt.workdir("phi_corpus")


@pytest.fixture(scope="module")
def corpus(work):
    return dt.make_corpus(work)


@pytest.fixture(scope="module")
def key1(work):
    return dt.write_key(os.path.join(work, "key1.hex"), dt.KEY1)


@pytest.fixture(scope="module")
def key2(work):
    return dt.write_key(os.path.join(work, "key2.hex"), dt.KEY2)


def deid(work, corpus, name, key, *options, mirrored=True):
    """Run the tool over the corpus into work/name/{out,headers} and pair the outputs."""
    d = os.path.join(work, name)
    out, hdr = os.path.join(d, "out"), os.path.join(d, "headers")
    run = dt.run_tool(corpus[0], out, hdr, *options, key=key)
    run.pairs, run.pair_problems = ({}, []) if not mirrored else dt.pair_outputs(
        corpus[0], list(corpus[1]["files"]), out)
    return run


@pytest.fixture(scope="module")
def basic(work, corpus, key1):
    """The Basic Profile run, with a log file and a line per file on stderr (both scanned)."""
    log = os.path.join(work, "basic.log")
    run = deid(work, corpus, "basic", key1, "--log", log, "--verbose")
    run.log = log
    return run


@pytest.fixture(scope="module")
def basic_again(work, corpus, key1):
    return deid(work, corpus, "basic_again", key1)


def outputs(run):
    """(input rel, output path, dataset) for every paired output."""
    for rel, out in sorted(run.pairs.items()):
        if out:
            yield rel, os.path.join(run.out, out), pydicom.dcmread(os.path.join(run.out, out))


# ---- the corpus itself: the checks below are not vacuous -------------------------------------

def test_corpus_carries_every_marker(corpus):
    """Every PHI value is found by the search in the input files it was written to, so a
    de-identifier that leaves it in place fails the tests below."""
    root, m = corpus
    search = dt.PhiSearch(m)
    data = {rel: open(os.path.join(root, rel), "rb").read() for rel in m["files"]}
    missing = []
    for p in m["phi"]:
        for rel in p["files"]:   # non-ASCII values are all in the ISO_IR 192 (UTF-8) patient
            if p["value"].encode("utf-8") not in data[rel]:
                missing.append(f"{p['value']} not in {rel}")
        if m["text_marker"] not in p["value"]:
            assert any(h[0] == "value " + p["value"] for rel in p["files"]
                       for h in search.in_bytes(data[rel])), p["value"]
    assert not missing, "\n".join(missing[:20])
    for rel in m["files"]:
        assert search.in_bytes(data[rel]), rel
    kinds = {p["kind"] for p in m["phi"]}
    assert {"table", "private", "private-no-creator", "nested", "overlay", "curve",
            "sr-text"} <= kinds
    vrs = {p["vr"] for p in m["phi"]}
    assert {"PN", "LO", "SH", "LT", "ST", "UT", "DA", "DT", "TM", "AS", "CS", "AE", "DS",
            "IS", "OB", "OW"} <= vrs
    assert {0, 1, 2, 3} <= {d for p in m["phi"] for d in p["depths"]}
    syntaxes = {f["transfer_syntax"] for f in m["files"].values()}
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5"} <= syntaxes


def test_generator_is_deterministic(work, corpus):
    root2, m2 = dt.make_corpus(os.path.join(work, "corpus_again"))
    root, m = corpus
    assert m2 == m
    for rel in m["files"]:
        with open(os.path.join(root, rel), "rb") as a, open(os.path.join(root2, rel), "rb") as b:
            assert a.read() == b.read(), rel


def test_manifest_agrees_with_annex_e_table(corpus):
    """The generator's claims (these tags are removed/emptied/replaced by the Basic Profile;
    kept tags are not in Table E.1-1) hold for the 2024b table."""
    import json
    table_path = os.path.join(dt.require_shared_data(), "profile", "ps315_table_E1-1_2024b.json")
    with open(table_path, encoding="utf-8") as f:
        table = {r["id"].upper(): r for r in json.load(f)}
    m = corpus[1]
    wrong = []
    for p in m["phi"]:
        if p["kind"] != "table":
            continue
        for tag in p["tags"]:
            row = table.get(tag)
            if row is None or row["basicProfile"] == "K":
                wrong.append(f"{tag} ({p['vr']}) is not de-identified by the Basic Profile")
    for f in m["files"].values():
        for tag in f["kept"]:
            if tag in table:
                wrong.append(f"{tag} is listed in Table E.1-1 ({table[tag]['basicProfile']})")
    assert not wrong, "\n".join(sorted(set(wrong)))


# ---- Basic Profile run -----------------------------------------------------------------------

def test_exit_status_ok(basic):
    assert basic.rc == 0, basic.explain()


def test_every_input_has_one_output(basic, corpus):
    problems = list(basic.pair_problems)
    outs = [r for r in dt.files_under(basic.out)]
    if len(outs) != len(corpus[1]["files"]):
        problems.append(f"{len(outs)} files in the output tree for {len(corpus[1]['files'])} "
                        f"inputs: {outs}")
    for rel, out in basic.pairs.items():
        if out and not os.path.isfile(dt.header_json_for(basic, out)):
            problems.append(f"{rel}: no {dt.header_json_for(basic, out)}")
    if not os.path.isfile(os.path.join(basic.headers, "keys.csv")):
        problems.append("no keys.csv in the headers directory")
    assert not problems, "\n".join(problems) + "\n" + basic.explain()


def test_output_names_are_pseudonyms(basic, corpus):
    """<10-digit patient pseudonym>_<8 digits>.dcm, the pseudonym is the new Patient ID, one
    pseudonym per patient."""
    problems, per_patient = [], {}
    for rel, path, ds in outputs(basic):
        name = os.path.basename(path)
        mt = dt.OUTPUT_NAME.match(name)
        if not mt:
            problems.append(f"{rel}: output name {name} is not <10 digits>_<8 digits>.dcm")
            continue
        if str(ds.get("PatientID", "")) != mt["patient"]:
            problems.append(f"{rel}: PatientID {ds.get('PatientID')!r} != name {mt['patient']}")
        per_patient.setdefault(corpus[1]["files"][rel]["patient"], set()).add(mt["patient"])
    for p, names in per_patient.items():
        if len(names) != 1:
            problems.append(f"patient {p} got several pseudonyms {sorted(names)}")
    if len({next(iter(v)) for v in per_patient.values()}) != len(per_patient):
        problems.append(f"patients share a pseudonym: {per_patient}")
    assert not problems, "\n".join(problems)


def test_no_phi_in_output_dicom(basic, corpus):
    search = dt.PhiSearch(corpus[1])
    found = []
    for rel in dt.files_under(basic.out):
        with open(os.path.join(basic.out, rel), "rb") as f:
            found += dt.describe_hits(rel, search.in_bytes(f.read()))
    assert not found, "PHI left in outputs:\n" + "\n".join(found)


def test_header_json_describes_output(basic):
    """Each *_DICOMHeader.json is DICOM JSON of its output (same SOP Instance UID)."""
    import json
    problems = []
    for rel, path, ds in outputs(basic):
        jp = dt.header_json_for(basic, os.path.relpath(path, basic.out))
        try:
            with open(jp, encoding="utf-8") as f:
                doc = json.load(f)
            got = doc["00080018"]["Value"][0]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            problems.append(f"{rel}: {jp}: {type(e).__name__}: {e}")
            continue
        if got != ds.SOPInstanceUID:
            problems.append(f"{rel}: JSON SOPInstanceUID {got} != {ds.SOPInstanceUID}")
    assert not problems, "\n".join(problems[:20])


def test_no_phi_in_header_json(basic, corpus):
    search = dt.PhiSearch(corpus[1])
    found, jsons = [], [r for r in dt.files_under(basic.headers) if r != "keys.csv"]
    assert any(r.endswith("_DICOMHeader.json") for r in jsons), "no header JSON written"
    for rel in jsons:
        with open(os.path.join(basic.headers, rel), "rb") as f:
            data = f.read()
        hits = search.in_json(data) if rel.endswith(".json") else search.in_bytes(data)
        found += dt.describe_hits(rel, hits)
    assert not found, "PHI in the headers directory:\n" + "\n".join(found)


def test_no_phi_on_console_or_log(basic, corpus):
    search = dt.PhiSearch(corpus[1])
    assert os.path.isfile(basic.log), "--log FILE was not written"
    with open(basic.log, "rb") as f:
        log = f.read()
    assert log.strip(), "empty log"
    found = dt.describe_hits("stdout/stderr (--verbose)", search.in_bytes(basic.console))
    found += dt.describe_hits("--log file", search.in_bytes(log))
    assert not found, "\n".join(found)


def test_kept_attributes_are_byte_identical(basic, corpus):
    problems = []
    for rel, path, _ in outputs(basic):
        raw = dt.raw_elements(path)
        for tag, want in corpus[1]["files"][rel]["kept"].items():
            got = raw.get(int(tag, 16))
            if got is None:
                problems.append(f"{rel}: kept attribute ({tag[:4]},{tag[4:]}) is missing")
            elif got != bytes.fromhex(want):
                problems.append(f"{rel}: ({tag[:4]},{tag[4:]}) changed: "
                                f"{bytes.fromhex(want)!r} -> {got!r}")
    assert not problems, "\n".join(problems[:40])


def deid_method_problems(run, codes):
    problems = []
    for rel, _, ds in outputs(run):
        if str(ds.get("PatientIdentityRemoved", "")) != "YES":
            problems.append(f"{rel}: PatientIdentityRemoved is "
                            f"{ds.get('PatientIdentityRemoved')!r}")
        got = {str(i.get("CodeValue", "")) for i in ds.get("DeidentificationMethodCodeSequence",
                                                           [])}
        if not set(codes) <= got:
            problems.append(f"{rel}: DeidentificationMethodCodeSequence has {sorted(got)}, "
                            f"expected at least {sorted(codes)}")
    return problems


def test_deidentification_method_recorded(basic):
    problems = deid_method_problems(basic, [dt.DEID_METHOD_CODES["basic"]])
    assert not problems, "\n".join(problems)


def test_references_between_files_resolve(basic, corpus):
    """A's Referenced SOP Instance UID (Frame of Reference, Series, Study) equals B's new UID."""
    m, problems = corpus[1], []
    cache = {}

    def load(rel):
        if rel not in cache:
            out = basic.pairs.get(rel)
            cache[rel] = pydicom.dcmread(os.path.join(basic.out, out)) if out else None
        return cache[rel]

    for r in m["references"]:
        a, b = load(r["file"]), load(r["target_file"])
        if a is None or b is None:
            problems.append(f"{r['file']} -> {r['target_file']}: output missing")
            continue
        got = dt.element_at(a, r["path"])
        want = b.get(int(r["target_tag"], 16))
        want = None if want is None else str(want.value)
        if got is None:
            problems.append(f"{r['file']}: reference {'/'.join(map(str, r['path']))} removed")
        elif str(got) != want:
            problems.append(f"{r['file']}: {'/'.join(map(str, r['path']))} = {got}, but "
                            f"{r['target_file']} ({r['target_tag']}) = {want}")
        elif str(got).startswith(m["uid_root"]):
            problems.append(f"{r['file']}: {'/'.join(map(str, r['path']))} kept original UID")
    assert not problems, "\n".join(problems[:40])


def test_new_uids_are_valid(basic):
    problems = []
    for rel, _, ds in outputs(basic):
        for path, tag, vr, value in dt.walk_values(ds):
            if vr != "UI" or not value:
                continue
            for v in (value if isinstance(value, (list, pydicom.multival.MultiValue))
                      else [value]):
                v = str(v)
                ok = len(v) <= 64 and all(p.isdigit() and (p == "0" or p[0] != "0")
                                          for p in v.split("."))
                if not ok:
                    problems.append(f"{rel}: {'/'.join(map(str, path))} invalid UID {v!r}")
        if ds.file_meta.MediaStorageSOPInstanceUID != ds.SOPInstanceUID:
            problems.append(f"{rel}: MediaStorageSOPInstanceUID != SOPInstanceUID")
    assert not problems, "\n".join(problems[:40])


# ---- keys ------------------------------------------------------------------------------------

UID_TAGS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


def identities(run):
    out = {}
    for rel, path, ds in outputs(run):
        out[rel] = {"name": os.path.relpath(path, run.out),
                    "PatientID": str(ds.get("PatientID", "")),
                    "PatientName": str(ds.get("PatientName", "")),
                    **{k: str(ds.get(k, "")) for k in UID_TAGS}}
    return out


def test_same_key_gives_same_names_and_uids(basic, basic_again):
    assert basic_again.rc == 0, basic_again.explain()
    a, b = identities(basic), identities(basic_again)
    assert a and a == b


def test_other_key_gives_other_names_and_uids(work, corpus, basic, key2):
    other = deid(work, corpus, "other_key", key2)
    assert other.rc == 0, other.explain()
    a, b = identities(basic), identities(other)
    assert set(a) == set(b)
    same = [f"{rel}: {k} {a[rel][k]}" for rel in a for k in ("name", "PatientID") + UID_TAGS
            if a[rel][k] and a[rel][k] == b[rel][k]]
    assert not same, "unchanged under another key:\n" + "\n".join(same)


def test_keys_csv_one_row_per_file(basic, corpus):
    with open(os.path.join(basic.headers, "keys.csv"), newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    has_header = rows and not any(ch.isdigit() for cell in rows[0] for ch in cell)
    data = rows[1:] if has_header else rows
    assert len(data) == len(corpus[1]["files"]), rows[:3]
    assert len({tuple(r) for r in data}) == len(data)


def test_flat_output_with_prefix(work, corpus, key1, basic):
    """--no-preserve-directory-structure --filename-prefix P: every output directly in OUTPUT
    as P<pseudonym>_<instance>.dcm, its JSON directly in HEADERS, the same instances."""
    run = deid(work, corpus, "flat", key1, "--no-preserve-directory-structure",
               "--filename-prefix", "TRIAL7_", mirrored=False)
    assert run.rc == 0, run.explain()
    outs = dt.files_under(run.out)
    problems = [f"{r}: not directly in OUTPUT" for r in outs if os.path.dirname(r)]
    for r in outs:
        mt = dt.OUTPUT_NAME.match(os.path.basename(r))
        if not mt or mt["prefix"] != "TRIAL7_":
            problems.append(f"{r}: name is not TRIAL7_<10 digits>_<8 digits>.dcm")
        elif not os.path.isfile(os.path.join(run.headers, r[:-4] + "_DICOMHeader.json")):
            problems.append(f"{r}: no {r[:-4]}_DICOMHeader.json in HEADERS")
    if len(outs) != len(corpus[1]["files"]):
        problems.append(f"{len(outs)} outputs for {len(corpus[1]['files'])} inputs")
    flat = {str(pydicom.dcmread(os.path.join(run.out, r)).SOPInstanceUID) for r in outs}
    mirrored = {str(ds.SOPInstanceUID) for _, _, ds in outputs(basic)}
    if flat != mirrored:
        problems.append("not the same SOP Instance UIDs as the mirrored run with the same key")
    assert not problems, "\n".join(problems[:20])


def test_recipe_overrides_table(work, corpus, key1):
    """--recipe: keep one attribute, replace another; everything else is still de-identified."""
    import json
    recipe = os.path.join(work, "recipe.json")
    with open(recipe, "w") as f:
        json.dump({"version": 1, "rules": [
            {"tag": "StudyDescription", "action": "keep"},
            {"tag": "(0008,0080)", "action": "replace", "value": "SITE A"}]}, f)
    run = deid(work, corpus, "recipe", key1, "--recipe", recipe)
    assert run.rc == 0, run.explain()
    m, problems = corpus[1], []
    originals = {}
    for rel in m["files"]:
        ds = pydicom.dcmread(os.path.join(corpus[0], rel), stop_before_pixels=True)
        originals[rel] = str(ds.StudyDescription)
    for rel, path, ds in outputs(run):
        if str(ds.get("StudyDescription", "")) != originals[rel]:
            problems.append(f"{rel}: StudyDescription {ds.get('StudyDescription')!r} not kept")
        if str(ds.get("InstitutionName", "")) != "SITE A":
            problems.append(f"{rel}: InstitutionName {ds.get('InstitutionName')!r} != 'SITE A'")
    search = dt.PhiSearch(m, exclude_tags=("00081030",))
    for rel in dt.files_under(run.out):
        with open(os.path.join(run.out, rel), "rb") as f:
            problems += dt.describe_hits(rel, search.in_bytes(f.read()))
    assert not problems, "\n".join(problems[:40])


# ---- Annex E options --------------------------------------------------------------------------

# Attributes Table E.1-1 keeps (K) or cleans (C) under Retain Patient Characteristics, among
# those the corpus fills: age, size, weight, ethnic group, smoking status, sex neutered, allergies.
PATIENT_CHARACTERISTICS = ("00101010", "00101020", "00101030", "00102160", "001021A0", "00102203",
                           "00102110")

def test_retain_patient_characteristics(work, corpus, key1):
    run = deid(work, corpus, "patchars", key1, "--retain-patient-characteristics")
    assert run.rc == 0, run.explain()
    m, problems = corpus[1], []
    checked = 0
    for rel, path, ds in outputs(run):
        p = m["patients"][m["files"][rel]["patient"]]
        for kw, want in (("PatientSex", p["sex"]), ("PatientAge", p["age"]),
                         ("PatientWeight", p["weight"]), ("PatientSize", p["size"])):
            got = ds.get(kw)
            if got is None or str(got) != want:
                problems.append(f"{rel}: {kw} = {got!r}, expected {want!r} (retained)")
        bd = str(ds.get("PatientBirthDate", ""))
        if not (len(bd) == 8 and bd[:4] == p["birth_date"][:4] and bd != p["birth_date"]):
            problems.append(f"{rel}: PatientBirthDate {bd!r}: expected the year "
                            f"{p['birth_date'][:4]} only (month/day not the original)")
        checked += 1
    problems += deid_method_problems(run, [dt.DEID_METHOD_CODES["retain-patient-characteristics"]])
    # Everything else is still de-identified (the option keeps or cleans only these).
    search = dt.PhiSearch(corpus[1], exclude_tags=PATIENT_CHARACTERISTICS)
    for rel in dt.files_under(run.out):
        with open(os.path.join(run.out, rel), "rb") as f:
            problems += dt.describe_hits(rel, search.in_bytes(f.read()))
    assert checked and not problems, "\n".join(problems[:40])


def test_retain_longitudinal_modified_dates(work, corpus, key1):
    run = deid(work, corpus, "dates", key1, "--retain-longitudinal-modified-dates")
    assert run.rc == 0, run.explain()
    m, problems, shifts = corpus[1], [], {}
    for rel, path, ds in outputs(run):
        patient = m["files"][rel]["patient"]
        for tag, orig in m["files"][rel]["dates"].items():
            if tag == "00100030":   # birth date is not a longitudinal date
                continue
            elem = ds.get(int(tag, 16))
            if elem is None or not str(elem.value):
                problems.append(f"{rel}: date ({tag[:4]},{tag[4:]}) removed; the option keeps "
                                f"dates, shifted")
                continue
            try:
                delta = dt.days_between(orig, str(elem.value))
            except ValueError:
                problems.append(f"{rel}: ({tag[:4]},{tag[4:]}) = {elem.value!r} is not a date")
                continue
            shifts.setdefault(patient, {}).setdefault(delta, []).append(f"{rel}:{tag}")
    for patient, by_delta in sorted(shifts.items()):
        if len(by_delta) != 1:
            problems.append(f"{patient}: dates shifted by different amounts "
                            f"{ {d: len(v) for d, v in by_delta.items()} }")
        for d in by_delta:
            if d == 0 or abs(d) > 30:
                problems.append(f"{patient}: shift of {d} days (expected 1..30 days either way)")
    if len(shifts) != len(m["patients"]):
        problems.append(f"shifted dates found for {sorted(shifts)} only")
    problems += deid_method_problems(
        run, [dt.DEID_METHOD_CODES["retain-longitudinal-modified-dates"]])
    # Everything else is still de-identified. Dates and times are left out: times may be kept,
    # and a shifted date can equal another attribute's original date by chance.
    search = dt.PhiSearch(m, exclude_vrs=("DA", "DT", "TM"))
    for rel in dt.files_under(run.out):
        with open(os.path.join(run.out, rel), "rb") as f:
            problems += dt.describe_hits(rel, search.in_bytes(f.read()))
    assert not problems, "\n".join(problems[:40])

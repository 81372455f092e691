// The GDCM shim: dictionary look-ups, GDCM-based serialisation of the C tree, inflating
// deflated data sets, and frame decoding. Every extern "C" entry point catches all exceptions.
#include "shim/gdcm_shim.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <mutex>
#include <new>
#include <ostream>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

#include <gdcmDataSet.h>
#include <gdcmDict.h>
#include <gdcmDicts.h>
#include <gdcmExplicitDataElement.h>
#include <gdcmFile.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmFragment.h>
#include <gdcmGlobal.h>
#include <gdcmImage.h>
#include <gdcmImplicitDataElement.h>
#include <gdcmItem.h>
#include <gdcmPhotometricInterpretation.h>
#include <gdcmPixelFormat.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfFragments.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmSwapper.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>
#include <gdcmVR.h>
#include <gdcmWriter.h>

extern "C" {
#include "core/core.h"
#include "dicom/dicom_int.h"
}

namespace
{

// GDCM prints warnings and errors to std::cerr unless told not to; a library must not print.
void quiet_gdcm()
{
    static std::once_flag once;
    std::call_once(once, [] {
        gdcm::Trace::SetDebug(false);
        gdcm::Trace::SetWarning(false);
        gdcm::Trace::SetError(false);
    });
}

// ---- streams over plain memory (no copy of the input, output straight into malloc memory) --

class MemIn : public std::streambuf
{
  public:
    MemIn(const uint8_t *data, size_t size)
    {
        char *p = const_cast<char *>(reinterpret_cast<const char *>(data));
        setg(p, p, p + size);
    }

  protected:
    pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override
    {
        char *base = dir == std::ios_base::beg   ? eback()
                     : dir == std::ios_base::cur ? gptr()
                                                 : egptr();
        if ((off < 0 && -off > base - eback()) || (off > 0 && off > egptr() - base))
            return pos_type(off_type(-1));
        setg(eback(), base + off, egptr());
        return pos_type(gptr() - eback());
    }
    pos_type seekpos(pos_type pos, std::ios_base::openmode which) override
    {
        return seekoff(off_type(pos), std::ios_base::beg, which);
    }
};

class MemOut : public std::streambuf
{
  public:
    explicit MemOut(size_t reserve) { grow(reserve ? reserve : 4096); }
    ~MemOut() override { std::free(data_); }
    MemOut(const MemOut &) = delete;
    MemOut &operator=(const MemOut &) = delete;

    size_t size() const { return static_cast<size_t>(pptr() - data_); }
    bool failed() const { return failed_; }
    // Hand the buffer over (NUL-terminated for convenience, not counted in *n).
    uint8_t *release(size_t *n)
    {
        if (!grow(1))
            return nullptr;
        *n = size();
        data_[*n] = 0;
        uint8_t *p = reinterpret_cast<uint8_t *>(data_);
        data_ = nullptr;
        setp(nullptr, nullptr);
        return p;
    }
    bool put(const void *p, size_t n)
    {
        if (!grow(n))
            return false;
        std::memcpy(pptr(), p, n);
        advance(n);
        return true;
    }

  protected:
    int_type overflow(int_type c) override
    {
        if (traits_type::eq_int_type(c, traits_type::eof()))
            return traits_type::not_eof(c);
        if (!grow(1))
            return traits_type::eof();
        *pptr() = traits_type::to_char_type(c);
        advance(1);
        return c;
    }
    std::streamsize xsputn(const char *s, std::streamsize n) override
    {
        return put(s, static_cast<size_t>(n)) ? n : 0;
    }
    pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override
    {
        if (off == 0 && dir == std::ios_base::cur)
            return pos_type(off_type(size()));
        return pos_type(off_type(-1));
    }

  private:
    char *data_ = nullptr;
    size_t cap_ = 0;
    bool failed_ = false;

    void advance(size_t n)
    {
        size_t used = size() + n;
        setp(data_ + used, data_ + cap_);
    }
    bool grow(size_t need)
    {
        size_t used = data_ ? size() : 0;
        if (cap_ - used >= need)
            return true;
        size_t ncap = cap_ * 2;
        if (ncap < used + need)
            ncap = used + need;
        if (ncap < used) { // overflow
            failed_ = true;
            return false;
        }
        char *p = static_cast<char *>(std::realloc(data_, ncap));
        if (!p) {
            failed_ = true;
            return false;
        }
        data_ = p;
        cap_ = ncap;
        setp(data_ + used, data_ + cap_);
        return true;
    }
};

// ---- VR conversions ------------------------------------------------------------------------

uint16_t vr_from_gdcm(gdcm::VR::VRType t)
{
    if (t == gdcm::VR::INVALID || t == gdcm::VR::VR_END)
        return DEID_VR_UN;
    if (t == gdcm::VR::OB_OW || t == gdcm::VR::US_OW || t == gdcm::VR::US_SS_OW)
        return DEID_VR('O', 'W');
    if (t == gdcm::VR::US_SS)
        return DEID_VR('U', 'S');
    const char *s = gdcm::VR::GetVRString(t);
    if (!s || std::strlen(s) != 2)
        return DEID_VR_UN;
    return DEID_VR(s[0], s[1]);
}

gdcm::VR vr_to_gdcm(uint16_t vr)
{
    char s[3] = {static_cast<char>(vr >> 8), static_cast<char>(vr & 0xFF), 0};
    gdcm::VR::VRType t = gdcm::VR::GetVRType(s);
    if (t == gdcm::VR::INVALID || t == gdcm::VR::VR_END)
        return gdcm::VR::UN;
    return t;
}

inline gdcm::Tag gtag(uint32_t tag)
{
    return gdcm::Tag(uint16_t(tag >> 16), uint16_t(tag & 0xFFFF));
}

deid_status fail_exception(const char *name, const char *what, const std::exception *ex)
{
    if (dynamic_cast<const std::bad_alloc *>(ex))
        return deid__fail(DEID_ERR_NOMEM, "gdcm", "%s: %s: out of memory", name, what);
    return deid__fail(DEID_ERR_GENERIC, "gdcm", "%s: %s: %s", name, what,
                      ex && ex->what() ? ex->what() : "unknown exception");
}

// ---- C tree -> GDCM data set ---------------------------------------------------------------

// gdcm::DataSet::Insert silently drops groups below 0008 (other than 0004); the tree is written
// as it is, so insert through the protected, unfiltered path.
struct RawDataSet : gdcm::DataSet {
    void put(const gdcm::DataElement &de) { InsertDataElement(de); }
};

void build_dataset(const deid_item *item, size_t from, size_t to, RawDataSet &out);

gdcm::DataElement build_element(const deid_elem *e)
{
    gdcm::DataElement de(gtag(e->tag));
    de.SetVR(vr_to_gdcm(e->vr));
    if (e->vr == DEID_VR_SQ) {
        gdcm::SmartPointer<gdcm::SequenceOfItems> sq = new gdcm::SequenceOfItems;
        sq->SetLengthToUndefined();
        for (size_t i = 0; i < e->nitems; i++) {
            RawDataSet nested;
            build_dataset(&e->items[i], 0, e->items[i].n, nested);
            gdcm::Item it;
            it.SetVLToUndefined();
            it.SetNestedDataSet(nested);
            sq->AddItem(it);
        }
        de.SetValue(*sq);
        de.SetVLToUndefined();
    } else if (e->encapsulated) {
        gdcm::SmartPointer<gdcm::SequenceOfFragments> sf = new gdcm::SequenceOfFragments;
        if (e->nfrags && e->frags[0].len)
            sf->GetTable().SetByteValue(reinterpret_cast<const char *>(e->frags[0].data),
                                        e->frags[0].len);
        for (size_t i = 1; i < e->nfrags; i++) {
            gdcm::Fragment f;
            f.SetByteValue(reinterpret_cast<const char *>(e->frags[i].data), e->frags[i].len);
            sf->AddFragment(f);
        }
        de.SetVR(gdcm::VR::OB);
        de.SetValue(*sf); // undefined length (GDCM asserts if SetVLToUndefined is used on OB)
    } else if (e->len) {
        de.SetByteValue(reinterpret_cast<const char *>(e->value), e->len);
    }
    return de;
}

bool is_group_length(uint32_t tag) { return (tag & 0xFFFFu) == 0; }

void build_dataset(const deid_item *item, size_t from, size_t to, RawDataSet &out)
{
    for (size_t i = from; i < to; i++) {
        const deid_elem *e = &item->elems[i];
        if (!is_group_length(e->tag))
            out.put(build_element(e));
    }
}

// ---- hand-encoded parts (meta group, top-level pixel data) ---------------------------------

void le16(std::string &s, uint16_t v)
{
    s.push_back(char(v & 0xFF));
    s.push_back(char(v >> 8));
}
void le32(std::string &s, uint32_t v)
{
    le16(s, uint16_t(v & 0xFFFF));
    le16(s, uint16_t(v >> 16));
}

void put_explicit(std::string &s, uint32_t tag, uint16_t vr, const void *v, size_t len)
{
    if (!deid__vr_is_long(vr) && len > 0xFFFF)
        vr = DEID_VR_UN;
    le16(s, uint16_t(tag >> 16));
    le16(s, uint16_t(tag & 0xFFFF));
    s.push_back(char(vr >> 8));
    s.push_back(char(vr & 0xFF));
    if (deid__vr_is_long(vr)) {
        le16(s, 0);
        le32(s, uint32_t(len));
    } else {
        le16(s, uint16_t(len));
    }
    s.append(static_cast<const char *>(v), len);
}

std::string uid_value(const char *uid)
{
    std::string v(uid);
    if (v.size() & 1)
        v.push_back('\0');
    return v;
}

const deid_elem *nonempty(const deid_item *item, uint32_t tag)
{
    const deid_elem *e = deid__item_find(item, tag);
    return e && e->value && e->len ? e : nullptr;
}

// 128-byte preamble, "DICM", then the File Meta Information, explicit VR little endian.
std::string meta_bytes(const deid_dataset *ds)
{
    struct el {
        uint32_t tag;
        uint16_t vr;
        std::string v;
    };
    std::vector<el> els;
    static const char version[2] = {0, 1};
    els.push_back({0x00020001u, DEID_VR('O', 'B'), std::string(version, 2)});
    const uint32_t from_ds[2][2] = {{0x00020002u, 0x00080016u}, {0x00020003u, 0x00080018u}};
    for (const auto &m : from_ds) {
        const deid_elem *e = nonempty(&ds->root, m[1]);
        if (!e)
            e = nonempty(&ds->meta, m[0]);
        if (e) {
            std::string v(reinterpret_cast<const char *>(e->value), e->len);
            while (!v.empty() && v.back() == ' ')
                v.back() = '\0'; // UIDs are padded with NUL
            els.push_back({m[0], DEID_VR('U', 'I'), v});
        }
    }
    const char *ts = ds->transfer_syntax ? ds->transfer_syntax : DEID_TS_EXPLICIT_LE;
    els.push_back({0x00020010u, DEID_VR('U', 'I'), uid_value(ts)});
    els.push_back({0x00020012u, DEID_VR('U', 'I'),
                   uid_value(gdcm::FileMetaInformation::GetImplementationClassUID())});
    std::string name = gdcm::FileMetaInformation::GetImplementationVersionName();
    if (name.size() > 16)
        name.resize(16);
    if (name.size() & 1)
        name.push_back(' ');
    els.push_back({0x00020013u, DEID_VR('S', 'H'), name});
    for (size_t i = 0; i < ds->meta.n; i++) {
        const deid_elem *e = &ds->meta.elems[i];
        switch (e->tag) {
        case 0x00020000u:
        case 0x00020001u:
        case 0x00020002u:
        case 0x00020003u:
        case 0x00020010u:
        case 0x00020012u:
        case 0x00020013u: continue;
        default:
            if ((e->tag >> 16) != 0x0002 || e->vr == DEID_VR_SQ || e->encapsulated)
                continue;
            els.push_back(
                {e->tag, e->vr, std::string(reinterpret_cast<const char *>(e->value), e->len)});
        }
    }
    std::sort(els.begin(), els.end(), [](const el &a, const el &b) { return a.tag < b.tag; });
    std::string body;
    for (const auto &e : els)
        put_explicit(body, e.tag, e.vr, e.v.data(), e.v.size());
    std::string out(128, '\0');
    out += "DICM";
    std::string glen;
    le32(glen, uint32_t(body.size()));
    put_explicit(out, 0x00020000u, DEID_VR('U', 'L'), glen.data(), 4);
    out += body;
    return out;
}

// Top-level Pixel Data straight from the tree into the output (no copy through GDCM's
// ByteValue, which would copy the pixels twice more).
bool put_pixel_data(MemOut &mo, const deid_elem *e, bool explicit_vr)
{
    std::string h;
    le16(h, 0x7FE0);
    le16(h, 0x0010);
    uint16_t vr = e->encapsulated ? DEID_VR('O', 'B') : e->vr;
    if (explicit_vr) {
        h.push_back(char(vr >> 8));
        h.push_back(char(vr & 0xFF));
        le16(h, 0);
    }
    le32(h, e->encapsulated ? 0xFFFFFFFFu : e->len);
    if (!mo.put(h.data(), h.size()))
        return false;
    if (!e->encapsulated)
        return e->len == 0 || mo.put(e->value, e->len);
    static const char zero[1] = {0};
    for (size_t i = 0; i < e->nfrags; i++) {
        const deid_fragment *f = &e->frags[i];
        uint32_t len = f->len + (f->len & 1u);
        std::string ih;
        le16(ih, 0xFFFE);
        le16(ih, 0xE000);
        le32(ih, len);
        if (!mo.put(ih.data(), ih.size()) || (f->len && !mo.put(f->data, f->len)) ||
            ((f->len & 1u) && !mo.put(zero, 1)))
            return false;
    }
    if (e->nfrags == 0) { // an empty offset table is still required
        static const char bot[8] = {char(0xFE), char(0xFF), 0, char(0xE0), 0, 0, 0, 0};
        if (!mo.put(bot, 8))
            return false;
    }
    static const char end[8] = {char(0xFE), char(0xFF), char(0xDD), char(0xE0), 0, 0, 0, 0};
    return mo.put(end, 8);
}

size_t item_bytes(const deid_item *item);

size_t elem_bytes(const deid_elem *e)
{
    size_t n = 16 + e->len;
    for (size_t i = 0; i < e->nitems; i++)
        n += 16 + item_bytes(&e->items[i]);
    for (size_t i = 0; i < e->nfrags; i++)
        n += 9 + e->frags[i].len;
    return n;
}

size_t item_bytes(const deid_item *item)
{
    size_t n = 0;
    for (size_t i = 0; i < item->n; i++)
        n += elem_bytes(&item->elems[i]);
    return n;
}

template <typename TDE, typename TSwap>
void write_dataset(std::ostream &os, const deid_dataset *ds, MemOut &mo, bool fast_pixels)
{
    const deid_item *root = &ds->root;
    size_t pix = root->n;
    const deid_elem *px = nullptr;
    if (fast_pixels) {
        for (size_t i = 0; i < root->n; i++)
            if (root->elems[i].tag == 0x7FE00010u) {
                const deid_elem *e = &root->elems[i];
                if (e->encapsulated || e->vr == DEID_VR('O', 'B') || e->vr == DEID_VR('O', 'W') ||
                    e->vr == DEID_VR_UN) {
                    pix = i;
                    px = e;
                }
                break;
            }
    }
    {
        RawDataSet head;
        build_dataset(root, 0, pix, head);
        head.Write<TDE, TSwap>(os);
    }
    if (!px)
        return;
    os.flush();
    if (!put_pixel_data(mo, px, std::is_same<TDE, gdcm::ExplicitDataElement>::value))
        throw std::bad_alloc();
    RawDataSet tail;
    build_dataset(root, pix + 1, root->n, tail);
    tail.Write<TDE, TSwap>(os);
}

deid_status write_impl(const deid_dataset *ds, uint8_t **out, size_t *out_size)
{
    const char *name = deid__ds_label(ds);
    MemOut mo(item_bytes(&ds->root) + 1024);
    std::ostream os(&mo);
    std::string meta = meta_bytes(ds);
    if (!mo.put(meta.data(), meta.size()))
        return deid__fail(DEID_ERR_NOMEM, "gdcm", "%s: out of memory while writing", name);
    switch (deid__ts_kind(ds->transfer_syntax)) {
    case DEID_TS_KIND_IMPLICIT_LE:
        write_dataset<gdcm::ImplicitDataElement, gdcm::SwapperNoOp>(os, ds, mo, true);
        break;
    case DEID_TS_KIND_EXPLICIT_BE:
        write_dataset<gdcm::ExplicitDataElement, gdcm::SwapperDoOp>(os, ds, mo, false);
        break;
    case DEID_TS_KIND_DEFLATED: {
        // GDCM's Writer deflates the data set; its meta header is left empty because ours is
        // already in the stream.
        RawDataSet all;
        build_dataset(&ds->root, 0, ds->root.n, all);
        gdcm::SmartPointer<gdcm::File> file = new gdcm::File;
        file->SetDataSet(all);
        file->GetHeader().SetDataSetTransferSyntax(
            gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian);
        file->GetHeader().GetPreamble().Remove();
        gdcm::Writer w;
        w.SetStream(os);
        w.SetFile(*file);
        w.SetCheckFileMetaInformation(false);
        if (!w.Write())
            return deid__fail(DEID_ERR_GENERIC, "gdcm",
                              "%s: GDCM could not write the deflated data set", name);
        break;
    }
    default: write_dataset<gdcm::ExplicitDataElement, gdcm::SwapperNoOp>(os, ds, mo, true); break;
    }
    os.flush();
    if (!os || mo.failed())
        return deid__fail(DEID_ERR_NOMEM, "gdcm", "%s: out of memory while writing", name);
    uint8_t *p = mo.release(out_size);
    if (!p)
        return deid__fail(DEID_ERR_NOMEM, "gdcm", "%s: out of memory while writing", name);
    *out = p;
    return DEID_OK;
}

// ---- GDCM reader -> re-encoded data set ----------------------------------------------------

deid_status reencode_impl(const uint8_t *data, size_t size, const char *name, uint8_t **out,
                          size_t *out_size)
{
    MemIn mb(data, size);
    std::istream is(&mb);
    gdcm::Reader r;
    r.SetStream(is);
    if (!r.Read())
        return deid__fail(DEID_ERR_NOT_DICOM, "gdcm", "%s: GDCM cannot parse the data set", name);
    const gdcm::TransferSyntax &ts = r.GetFile().GetHeader().GetDataSetTransferSyntax();
    const gdcm::DataSet &gds = r.GetFile().GetDataSet();
    MemOut mo(size + 1024);
    std::ostream os(&mo);
    if (ts.GetNegociatedType() == gdcm::TransferSyntax::Implicit)
        gds.Write<gdcm::ImplicitDataElement, gdcm::SwapperNoOp>(os);
    else
        gds.Write<gdcm::ExplicitDataElement, gdcm::SwapperNoOp>(os);
    os.flush();
    if (!os || mo.failed())
        return deid__fail(DEID_ERR_NOMEM, "gdcm", "%s: out of memory", name);
    uint8_t *p = mo.release(out_size);
    if (!p)
        return deid__fail(DEID_ERR_NOMEM, "gdcm", "%s: out of memory", name);
    *out = p;
    return DEID_OK;
}

// ---- frame decoding -----------------------------------------------------------------------

bool jpeg_family(gdcm::TransferSyntax::TSType ts)
{
    switch (ts) {
    case gdcm::TransferSyntax::JPEGBaselineProcess1:
    case gdcm::TransferSyntax::JPEGExtendedProcess2_4:
    case gdcm::TransferSyntax::JPEGExtendedProcess3_5:
    case gdcm::TransferSyntax::JPEGSpectralSelectionProcess6_8:
    case gdcm::TransferSyntax::JPEGFullProgressionProcess10_12:
    case gdcm::TransferSyntax::JPEGLosslessProcess14:
    case gdcm::TransferSyntax::JPEGLosslessProcess14_1: return true;
    default: return false;
    }
}

deid_status decode_impl(const deid_shim_pixel *px, const uint8_t *data, size_t size, void *out,
                        size_t out_size, char *pi_out)
{
    gdcm::TransferSyntax::TSType tst = gdcm::TransferSyntax::GetTSType(px->transfer_syntax);
    gdcm::TransferSyntax ts(tst);
    if (tst == gdcm::TransferSyntax::TS_END || !ts.IsEncapsulated())
        return deid__fail(DEID_ERR_UNSUPPORTED, "gdcm", "transfer syntax %s cannot be decoded",
                          px->transfer_syntax);
    gdcm::PhotometricInterpretation::PIType pit =
        gdcm::PhotometricInterpretation::GetPIType(px->photometric);
    if (pit == gdcm::PhotometricInterpretation::UNKNOWN ||
        pit == gdcm::PhotometricInterpretation::PI_END)
        return deid__fail(DEID_ERR_UNSUPPORTED, "gdcm", "photometric interpretation %s",
                          px->photometric);

    gdcm::Image img;
    img.SetNumberOfDimensions(2);
    img.SetDimension(0, px->cols);
    img.SetDimension(1, px->rows);
    img.SetPixelFormat(gdcm::PixelFormat(uint16_t(px->samples), uint16_t(px->bits_allocated),
                                         uint16_t(px->bits_stored), uint16_t(px->high_bit),
                                         uint16_t(px->pixel_representation)));
    img.SetPhotometricInterpretation(pit);
    img.SetTransferSyntax(ts);
    img.SetPlanarConfiguration(px->samples == 3 ? px->planar_configuration : 0);

    gdcm::SmartPointer<gdcm::SequenceOfFragments> sf = new gdcm::SequenceOfFragments;
    gdcm::Fragment frag;
    frag.SetByteValue(reinterpret_cast<const char *>(data), gdcm::VL(uint32_t(size)));
    sf->AddFragment(frag);
    gdcm::DataElement pixel(gdcm::Tag(0x7FE0, 0x0010));
    pixel.SetVR(gdcm::VR::OB);
    pixel.SetValue(*sf);
    img.SetDataElement(pixel);

    if (img.GetBufferLength() != out_size)
        return deid__fail(DEID_ERR_UNSUPPORTED, "gdcm",
                          "decoded frame would be %lu bytes, expected %zu (unsupported layout)",
                          img.GetBufferLength(), out_size);
    if (!img.GetBuffer(static_cast<char *>(out)))
        return deid__fail(DEID_ERR_GENERIC, "gdcm",
                          "cannot decode %s frame (corrupt or unsupported)", ts.GetString());

    const char *pi = px->photometric;
    if (pit == gdcm::PhotometricInterpretation::YBR_RCT ||
        pit == gdcm::PhotometricInterpretation::YBR_ICT)
        pi = "RGB";
    else if (pit == gdcm::PhotometricInterpretation::YBR_FULL_422 && jpeg_family(tst))
        pi = "YBR_FULL";
    std::snprintf(pi_out, 20, "%s", pi);
    return DEID_OK;
}

} // namespace

// ---- C entry points ------------------------------------------------------------------------

extern "C" uint16_t deid_shim_dict_vr(uint32_t tag, uint16_t *alt)
{
    if (alt)
        *alt = 0;
    try {
        const gdcm::Dicts &dicts = gdcm::Global::GetInstance().GetDicts();
        gdcm::VR::VRType t = dicts.GetDictEntry(gtag(tag)).GetVR();
        if (alt) {
            if (t == gdcm::VR::US_SS)
                *alt = DEID_VR('S', 'S');
            else if (t == gdcm::VR::OB_OW)
                *alt = DEID_VR('O', 'B');
            else if (t == gdcm::VR::US_OW || t == gdcm::VR::US_SS_OW)
                *alt = DEID_VR('U', 'S');
        }
        return vr_from_gdcm(t);
    } catch (...) {
        return DEID_VR_UN;
    }
}

extern "C" uint16_t deid__dict_vr(uint32_t tag) { return deid_shim_dict_vr(tag, nullptr); }

extern "C" uint16_t deid_shim_private_vr(uint32_t tag, const char *creator)
{
    try {
        if (!creator || !*creator)
            return DEID_VR_UN;
        const gdcm::Dicts &dicts = gdcm::Global::GetInstance().GetDicts();
        gdcm::PrivateTag pt(uint16_t(tag >> 16), uint16_t(tag & 0xFF), creator);
        return vr_from_gdcm(dicts.GetDictEntry(pt).GetVR());
    } catch (...) {
        return DEID_VR_UN;
    }
}

extern "C" deid_status deid_shim_gdcm_reencode(const uint8_t *data, size_t size, const char *name,
                                               uint8_t **out, size_t *out_size)
{
    const char *label = name ? name : "<memory>";
    try {
        quiet_gdcm();
        return reencode_impl(data, size, label, out, out_size);
    } catch (const std::exception &ex) {
        return fail_exception(label, "reading", &ex);
    } catch (...) {
        return fail_exception(label, "reading", nullptr);
    }
}

extern "C" deid_status deid_shim_write(const deid_dataset *ds, uint8_t **out, size_t *out_size)
{
    const char *label = deid__ds_label(ds);
    try {
        quiet_gdcm();
        return write_impl(ds, out, out_size);
    } catch (const std::exception &ex) {
        return fail_exception(label, "writing", &ex);
    } catch (...) {
        return fail_exception(label, "writing", nullptr);
    }
}

extern "C" deid_status deid_shim_decode_frame(const deid_shim_pixel *px, const uint8_t *data,
                                              size_t size, void *out, size_t out_size,
                                              char *photometric_out)
{
    try {
        quiet_gdcm();
        if (size > 0xFFFFFFF0u)
            return deid__fail(DEID_ERR_LIMIT, "gdcm", "compressed frame of %zu bytes is too large",
                              size);
        return decode_impl(px, data, size, out, out_size, photometric_out);
    } catch (const std::exception &ex) {
        return fail_exception("frame", "decoding", &ex);
    } catch (...) {
        return fail_exception("frame", "decoding", nullptr);
    }
}

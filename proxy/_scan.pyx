# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled scanner: one policed index record decided on its bytes (issue 14).

`Scanner.run(raw)` parses the record once into a tape of nodes (validating it as it goes), shapes it,
decides with the program's judges, applies the redactions and seals as edits on the tape, and writes
the record back out: the backend's bytes when nothing changed, else the compact form orjson would
write of the changed record (so the pure path, `proxy.transform`, gives the same bytes). Anything it
is not certain of (an escape it does not spell like orjson, a number orjson would read otherwise, a
shape a judge would refuse, a list of lists, deep nesting, a repeated key) answers FALLBACK: the
record goes through the pure path, which decides it or refuses it. The program (what to look for and
how to judge) is compiled from a plan by `proxy.native`; this module knows only the four judgement
kinds and three redaction kinds named there.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_FromLongLong
from cpython.set cimport PySet_Contains
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

FALLBACK = object()
"""What run() answers for a record the pure path must decide (never an error of its own)."""

# judgement kinds
DEF J_CONTACT = 1
DEF J_FILTER = 2
DEF J_HOURS = 3
DEF J_RATE = 4
KINDS = {"contact": J_CONTACT, "filter": J_FILTER, "hours": J_HOURS, "rate": J_RATE}
"""The judgement kinds, by the name a rule's native() gives (proxy.native reads them here)."""

DEF K_OBJ = 1
DEF K_ARR = 2
DEF K_STR = 3
DEF K_NUM = 4
DEF K_LIT = 5   # true, false
DEF K_NULL = 6

DEF F_DELETED = 1
DEF F_REPLACED = 2
DEF F_INT = 4       # a number that is a plain integer (fits int64)
DEF F_ESCAPED = 8   # a string holding a backslash escape

DEF MAX_DEPTH = 64
DEF MAX_STEPS = 32
DEF MAX_DECIDED = 1024  # decisions in one record (a list location decides each of its objects)

# what one record came to (Scanner._record)
DEF R_FALLBACK = -1
DEF R_UNCHANGED = 0
DEF R_CHANGED = 1
DEF R_DROPPED = 2
DEF MAX_MEMBERS = 512

# shaping modes of a top-level member (proxy.policy.fields.Shaping.nested)
DEF S_DEFAULTS = 0
DEF S_DECIDED = 1
DEF S_BRACES = 2


cdef inline unsigned int _hash(const unsigned char* p, Py_ssize_t n):
    """A member name's bucket: its length and three of its bytes (names are short; equal buckets are
    told apart by memcmp)."""
    if n == 0:
        return 0
    return (<unsigned int>n * 2654435761u) ^ (<unsigned int>p[0] * 97u) ^ (<unsigned int>p[n >> 1] * 7919u) ^ (
        <unsigned int>p[n - 1] * 131u)


cdef class Names:
    """A set of member names, looked up by their bytes without building an object (open addressing
    on `_hash`); each name carries an int (an index into a side table, or 1)."""

    cdef list keys
    cdef const unsigned char** ptrs
    cdef Py_ssize_t* lens
    cdef int* values
    cdef unsigned int mask

    def __cinit__(self, names, values=None):
        cdef unsigned int size = 8, h, k
        cdef bytes key
        self.keys = [bytes(n) for n in names]
        while size < 2 * len(self.keys) + 2:
            size *= 2
        self.mask = size - 1
        self.ptrs = <const unsigned char**>malloc(size * sizeof(void*))
        self.lens = <Py_ssize_t*>malloc(size * sizeof(Py_ssize_t))
        self.values = <int*>malloc(size * sizeof(int))
        if self.ptrs == NULL or self.lens == NULL or self.values == NULL:
            raise MemoryError()
        for k in range(size):
            self.ptrs[k] = NULL
        for i, key in enumerate(self.keys):
            h = _hash(<const unsigned char*>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)) & self.mask
            while self.ptrs[h] != NULL:
                h = (h + 1) & self.mask
            self.ptrs[h] = <const unsigned char*>PyBytes_AS_STRING(key)
            self.lens[h] = PyBytes_GET_SIZE(key)
            self.values[h] = 1 if values is None else values[i]

    def __dealloc__(self):
        free(self.ptrs)
        free(self.lens)
        free(self.values)

    cdef int get(self, const unsigned char* p, Py_ssize_t n):
        """The name's value, or -1 when it is not in the set."""
        cdef unsigned int h = _hash(p, n) & self.mask
        while self.ptrs[h] != NULL:
            if self.lens[h] == n and memcmp(self.ptrs[h], p, n) == 0:
                return self.values[h]
            h = (h + 1) & self.mask
        return -1


cdef Names _names(object names):
    """Names as given, or built from an iterable of bytes (or str)."""
    if isinstance(names, Names):
        return names
    return Names([n.encode() if isinstance(n, str) else n for n in names])


cdef Names _DEFAULTS = Names((b"id", b"etag", b"type"))

cdef unsigned char _PLAIN[256]
"""Bytes a string holds as they are: printable ASCII but the quote and the backslash."""
for _c in range(256):
    _PLAIN[_c] = 1 if 32 <= _c < 128 and _c != 34 and _c != 92 else 0


cdef struct Node:
    int kind
    int flags
    Py_ssize_t start      # the value's bytes [start, end)
    Py_ssize_t end
    Py_ssize_t kstart     # a member's key, without quotes (-1: not a member)
    Py_ssize_t kend
    int first             # first child (-1: none)
    int next              # next sibling (-1: none)
    int count
    int repl              # index into the run's replacements (F_REPLACED)
    long long ival        # F_INT


cdef class Tables:
    """What of a plan the scanner needs that does not depend on the caller, built once per plan."""

    cdef bint shaping
    cdef Names keep            # the record's members kept (Shaping.keep)
    cdef Names nested          # a kept member's name -> its index in `how`
    cdef list how              # (mode, Names keep, Names decided) per nested entry
    cdef tuple seal_at         # (name, is a list, next name or None) of the seal places below the record
    cdef bint has_seal_record
    cdef Names strip_top
    cdef list strip_nested     # (name bytes, Names subs)

    def __init__(self, shape, seal_at, strip_top, strip_nested):
        """shape: None, or (kept names, {name: (mode, kept sub-names or None, decided sub-names or
        None)}); seal_at: (member name, is a list, next name or None) of the places whose objects'
        etags are sealed, None for the record; strip_top / strip_nested: what augmentation added
        (fields.Added), by name and {name: sub-names}."""
        self.shaping = shape is not None
        if shape is not None:
            self.keep = _names(shape[0])
            names = list(shape[1])
            self.nested = Names(names, list(range(len(names))))
            self.how = [(mode, _names(sub or ()), _names(decided or ())) for mode, sub, decided in shape[1].values()]
        self.seal_at = tuple(k for k in seal_at if k is not None)
        self.has_seal_record = any(k is None for k in seal_at)
        self.strip_top = _names(strip_top)
        self.strip_nested = [(name, _names(subs)) for name, subs in strip_nested.items()]


cdef class Scanner:
    """One compiled program for one request: the plan's tables and the caller's facts."""

    cdef Node* nodes
    cdef int n_nodes
    cdef int cap
    cdef const unsigned char* buf
    cdef Py_ssize_t size
    cdef bint canonical
    cdef list repls
    cdef list appends          # (node, b'"key":value') appended to an object, in order
    cdef int kinds[MAX_STEPS]  # each step's judgement kind, in apply order
    cdef list keys             # each step's place: None (the record), a member name, or (name, is a list, next name)
    cdef list params           # each step's judgement parameters
    cdef int n_steps
    cdef Tables t              # the plan's tables
    cdef Names defaults
    cdef object seal

    def __cinit__(self):
        self.cap = 256
        self.nodes = <Node*>malloc(self.cap * sizeof(Node))
        if self.nodes == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.nodes)

    def __init__(self, steps, Tables tables, seal):
        """steps: (kind, member name or None for the record, params) in apply order; tables: what of
        the plan does not depend on the caller (built once per plan); seal: the proxy's tag of a
        backend etag (or None)."""
        self.keys = []
        self.params = []
        self.n_steps = 0
        for kind, key, params in steps:
            if self.n_steps == MAX_STEPS:
                raise ValueError("too many steps for the scanner")
            if kind == J_HOURS:
                params = (params[0], params[1], _names(params[2]), _names(params[3]))
            elif kind == J_CONTACT:
                params = (params[0], _names(params[1]), params[2])
            elif kind == J_FILTER:
                params = (False, None, params[0])  # as a contact's: the visible set third
            self.kinds[self.n_steps] = kind
            self.keys.append(key)
            self.params.append(params)
            self.n_steps += 1
        self.defaults = _DEFAULTS
        self.t = tables
        self.seal = seal

    # -- parsing --------------------------------------------------------------------------------

    cdef int _new(self, int kind, Py_ssize_t start) except -2:
        cdef Node* grown
        if self.n_nodes == self.cap:
            grown = <Node*>realloc(self.nodes, 2 * self.cap * sizeof(Node))
            if grown == NULL:
                raise MemoryError()
            self.nodes = grown
            self.cap *= 2
        cdef Node* n = &self.nodes[self.n_nodes]
        n.kind = kind
        n.flags = 0
        n.start = start
        n.end = start
        n.kstart = -1
        n.kend = -1
        n.first = -1
        n.next = -1
        n.count = 0
        n.repl = -1
        n.ival = 0
        self.n_nodes += 1
        return self.n_nodes - 1

    cdef inline Py_ssize_t _ws(self, Py_ssize_t i):
        cdef unsigned char c
        while i < self.size:
            c = self.buf[i]
            if c != 32 and c != 10 and c != 13 and c != 9:
                break
            i += 1
        return i

    cdef Py_ssize_t _string(self, Py_ssize_t i, int* escaped):
        """i at the opening quote; the index after the closing one, or -1 (not certain)."""
        cdef const unsigned char* b = self.buf
        cdef Py_ssize_t n = self.size
        cdef unsigned char c, c2
        i += 1
        while i < n:
            while i < n and _PLAIN[b[i]]:
                i += 1
            if i >= n:
                return -1
            c = b[i]
            if c == 34:  # "
                return i + 1
            if c == 92:  # backslash
                if i + 1 >= n:
                    return -1
                c2 = b[i + 1]
                if c2 == 34 or c2 == 92 or c2 == 98 or c2 == 102 or c2 == 110 or c2 == 114 or c2 == 116:
                    escaped[0] = 1
                    i += 2
                    continue
                if c2 == 47:  # \/ : valid, but orjson writes /
                    escaped[0] = 1
                    self.canonical = False
                    i += 2
                    continue
                return -1  # \u and anything else: the pure path decides
            if c < 32:
                return -1
            if c < 128:
                i += 1
                continue
            # UTF-8, as orjson accepts it: no overlongs, no surrogates, nothing past U+10FFFF
            if 0xC2 <= c <= 0xDF:
                if i + 1 >= n or (b[i + 1] & 0xC0) != 0x80:
                    return -1
                i += 2
            elif 0xE0 <= c <= 0xEF:
                if i + 2 >= n or (b[i + 1] & 0xC0) != 0x80 or (b[i + 2] & 0xC0) != 0x80:
                    return -1
                if c == 0xE0 and b[i + 1] < 0xA0:
                    return -1
                if c == 0xED and b[i + 1] > 0x9F:
                    return -1
                i += 3
            elif 0xF0 <= c <= 0xF4:
                if (i + 3 >= n or (b[i + 1] & 0xC0) != 0x80 or (b[i + 2] & 0xC0) != 0x80
                        or (b[i + 3] & 0xC0) != 0x80):
                    return -1
                if c == 0xF0 and b[i + 1] < 0x90:
                    return -1
                if c == 0xF4 and b[i + 1] > 0x8F:
                    return -1
                i += 4
            else:
                return -1
        return -1

    cdef Py_ssize_t _number(self, Py_ssize_t i, int node):
        """A number orjson reads as this scanner would write it; -1 otherwise (not certain)."""
        cdef const unsigned char* b = self.buf
        cdef Py_ssize_t n = self.size
        cdef Py_ssize_t s = i
        cdef bint neg = False
        cdef int int_digits = 0, frac_digits = 0, sig = 0
        cdef long long value = 0
        cdef Py_ssize_t frac_start, j
        if i < n and b[i] == 45:  # -
            neg = True
            i += 1
        if i >= n or not (48 <= b[i] <= 57):
            return -1
        if b[i] == 48:
            i += 1
            if i < n and 48 <= b[i] <= 57:
                return -1  # a leading zero is not JSON
        else:
            while i < n and 48 <= b[i] <= 57:
                value = value * 10 + (b[i] - 48)
                int_digits += 1
                i += 1
                if int_digits > 15:
                    return -1  # ints past 15 digits and such floats: the pure path reads them
        if i < n and (b[i] == 101 or b[i] == 69):
            return -1  # exponents: the pure path
        if i < n and b[i] == 46:  # .
            i += 1
            frac_start = i
            while i < n and 48 <= b[i] <= 57:
                frac_digits += 1
                i += 1
            if frac_digits == 0:
                return -1
            if i < n and (b[i] == 101 or b[i] == 69):
                return -1
            # orjson writes the shortest spelling that reads back: with at most 15 significant digits
            # and no trailing zero (but "x.0"), between 1e-5 and 1e15, that is the literal itself.
            if b[i - 1] == 48 and not (frac_digits == 1):
                self.canonical = False
            sig = int_digits
            if int_digits == 0:  # 0.xxx: leading zeros of the fraction are not significant
                j = frac_start
                while j < i and b[j] == 48:
                    j += 1
                if j == i:  # 0.0, -0.0
                    if frac_digits != 1:
                        self.canonical = False
                else:
                    if j - frac_start > 4:
                        self.canonical = False  # below 1e-5 orjson writes an exponent
                    sig = <int>(i - j)
            else:
                sig += frac_digits
            if sig > 15:
                self.canonical = False
            self.nodes[node].end = i
            return i
        if neg and value == 0:
            self.canonical = False  # -0 reads as 0
        self.nodes[node].flags |= F_INT
        self.nodes[node].ival = -value if neg else value
        self.nodes[node].end = i
        return i

    cdef int _parse(self) except -2:
        """The tape of the whole record (self.buf is one record); 0 when certain, -1 otherwise."""
        cdef Py_ssize_t end = self._parse_at(self._ws(0))
        return 0 if end >= 0 and self._ws(end) == self.size else -1

    cdef Py_ssize_t _parse_at(self, Py_ssize_t start) except -2:
        """The tape of the object starting at `start`; the index just after it, or -1 (not certain)."""
        cdef int stack[MAX_DEPTH]
        cdef int last[MAX_DEPTH]
        cdef int depth = 0
        cdef Py_ssize_t i = start
        cdef Py_ssize_t kstart, kend, j
        cdef int node, parent, escaped, prev
        cdef unsigned char c
        cdef Node* p
        self.n_nodes = 0
        if i >= self.size or self.buf[i] != 123:
            return -1
        # The value loop: at each turn, a value starts at i, its key (if in an object) already read.
        kstart = -1
        kend = -1
        while True:
            if i >= self.size:
                return -1
            c = self.buf[i]
            if c == 123 or c == 91:
                node = self._new(K_OBJ if c == 123 else K_ARR, i)
            elif c == 34:
                node = self._new(K_STR, i)
                escaped = 0
                j = self._string(i, &escaped)
                if j < 0:
                    return -1
                if escaped:
                    self.nodes[node].flags |= F_ESCAPED
                self.nodes[node].end = j
            elif c == 116 and self.size - i >= 4 and memcmp(self.buf + i, b"true", 4) == 0:
                node = self._new(K_LIT, i)
                self.nodes[node].end = i + 4
            elif c == 102 and self.size - i >= 5 and memcmp(self.buf + i, b"false", 5) == 0:
                node = self._new(K_LIT, i)
                self.nodes[node].end = i + 5
            elif c == 110 and self.size - i >= 4 and memcmp(self.buf + i, b"null", 4) == 0:
                node = self._new(K_NULL, i)
                self.nodes[node].end = i + 4
            elif c == 45 or 48 <= c <= 57:
                node = self._new(K_NUM, i)
                if self._number(i, node) < 0:
                    return -1
            else:
                return -1
            self.nodes[node].kstart = kstart
            self.nodes[node].kend = kend
            if depth > 0:
                parent = stack[depth - 1]
                p = &self.nodes[parent]
                if p.first < 0:
                    p.first = node
                else:
                    self.nodes[last[depth - 1]].next = node
                last[depth - 1] = node
                p.count += 1
                if p.count > MAX_MEMBERS:
                    return -1
            elif node != 0:
                return -1
            if self.nodes[node].kind == K_OBJ or self.nodes[node].kind == K_ARR:
                if depth == MAX_DEPTH:
                    return -1
                stack[depth] = node
                last[depth] = -1
                depth += 1
                i = self._ws(i + 1)
                if i < self.size and (self.buf[i] == 125 or self.buf[i] == 93):
                    if (self.buf[i] == 125) != (self.nodes[node].kind == K_OBJ):
                        return -1
                    # an empty container: closed below
                else:
                    if self.nodes[node].kind == K_OBJ:
                        if self._key(&i, &kstart, &kend) < 0:
                            return -1
                    else:
                        kstart = -1
                        kend = -1
                    continue
            else:
                i = self.nodes[node].end
                i = self._ws(i)
            # after a value: `,` next member, or close containers
            while True:
                if depth == 0:
                    return self.nodes[0].end
                parent = stack[depth - 1]
                if i >= self.size:
                    return -1
                c = self.buf[i]
                if c == 44:  # ,
                    i = self._ws(i + 1)
                    if self.nodes[parent].kind == K_OBJ:
                        if self._key(&i, &kstart, &kend) < 0:
                            return -1
                    else:
                        kstart = -1
                        kend = -1
                    break
                if (c == 125 and self.nodes[parent].kind == K_OBJ) or (c == 93 and self.nodes[parent].kind == K_ARR):
                    self.nodes[parent].end = i + 1
                    if self.nodes[parent].kind == K_OBJ and self._repeats(parent):
                        return -1
                    depth -= 1
                    i = self._ws(i + 1)
                    continue
                return -1

    cdef int _key(self, Py_ssize_t* at, Py_ssize_t* kstart, Py_ssize_t* kend) except -2:
        cdef Py_ssize_t i = at[0]
        cdef int escaped = 0
        cdef Py_ssize_t j
        if i >= self.size or self.buf[i] != 34:
            return -1
        j = self._string(i, &escaped)
        if j < 0 or escaped:
            return -1  # an escaped key could spell another: the pure path compares decoded keys
        kstart[0] = i + 1
        kend[0] = j - 1
        i = self._ws(j)
        if i >= self.size or self.buf[i] != 58:  # :
            return -1
        at[0] = self._ws(i + 1)
        return 0

    cdef bint _repeats(self, int obj):
        """Whether a key of `obj` appears twice (compared as written: escaped keys never get here)."""
        cdef int slots[2 * MAX_MEMBERS]
        cdef unsigned int size = 16, mask, h
        cdef int a, b
        cdef Py_ssize_t la
        cdef const unsigned char* ka
        if self.nodes[obj].count < 2:
            return False
        while size < 2 * <unsigned int>self.nodes[obj].count:
            size *= 2
        mask = size - 1
        for h in range(size):
            slots[h] = -1
        a = self.nodes[obj].first
        while a >= 0:
            ka = self.buf + self.nodes[a].kstart
            la = self.nodes[a].kend - self.nodes[a].kstart
            h = _hash(ka, la) & mask
            while slots[h] >= 0:
                b = slots[h]
                if self.nodes[b].kend - self.nodes[b].kstart == la and memcmp(ka, self.buf + self.nodes[b].kstart, la) == 0:
                    return True
                h = (h + 1) & mask
            slots[h] = a
            a = self.nodes[a].next
        return False

    # -- looking up -----------------------------------------------------------------------------

    cdef int _member(self, int obj, bytes key):
        """The live member of `obj` named `key`, or -1."""
        cdef const char* k = PyBytes_AS_STRING(key)
        cdef Py_ssize_t lk = PyBytes_GET_SIZE(key)
        cdef int c = self.nodes[obj].first
        while c >= 0:
            if (not (self.nodes[c].flags & F_DELETED) and self.nodes[c].kend - self.nodes[c].kstart == lk
                    and memcmp(self.buf + self.nodes[c].kstart, k, lk) == 0):
                return c
            c = self.nodes[c].next
        return -1

    cdef inline int _name(self, int node, Names names):
        """The value `names` gives this member's key, or -1."""
        return names.get(self.buf + self.nodes[node].kstart, self.nodes[node].kend - self.nodes[node].kstart)

    # -- shaping (proxy.policy.fields.shape_record) -----------------------------------------------

    cdef int _cut(self, int obj, Names keep) except -2:
        cdef int c = self.nodes[obj].first
        cdef int cut = 0
        while c >= 0:
            if not (self.nodes[c].flags & F_DELETED) and self._name(c, keep) < 0:
                self.nodes[c].flags |= F_DELETED
                cut = 1
            c = self.nodes[c].next
        return cut

    cdef int _keep_only(self, int value, Names keep) except -2:
        """A dict cut to `keep`; a list's objects cut (a list of lists: not certain, -1)."""
        cdef int c, cut = 0, r
        if self.nodes[value].kind == K_OBJ:
            return self._cut(value, keep)
        c = self.nodes[value].first
        while c >= 0:
            if self.nodes[c].kind == K_ARR:
                return -1
            if self.nodes[c].kind == K_OBJ:
                cut |= self._cut(c, keep)
            c = self.nodes[c].next
        return cut

    cdef int _inner_defaults(self, int value) except -2:
        """Objects nested in `value`'s objects keep the nested defaults (fields._inner_defaults)."""
        cdef int item, c, cut = 0, r
        if self.nodes[value].kind == K_OBJ:
            return self._defaults_inside(value)
        item = self.nodes[value].first
        while item >= 0:
            if self.nodes[item].kind == K_ARR:
                return -1
            if self.nodes[item].kind == K_OBJ:
                r = self._defaults_inside(item)
                if r < 0:
                    return -1
                cut |= r
            item = self.nodes[item].next
        return cut

    cdef int _defaults_inside(self, int obj) except -2:
        cdef int c = self.nodes[obj].first, cut = 0, r
        while c >= 0:
            if not (self.nodes[c].flags & F_DELETED) and (self.nodes[c].kind == K_OBJ or self.nodes[c].kind == K_ARR):
                r = self._keep_only(c, self.defaults)
                if r < 0:
                    return -1
                cut |= r
            c = self.nodes[c].next
        return cut

    cdef int _shape(self) except -2:
        cdef int cut = self._cut(0, self.t.keep)
        cdef int c = self.nodes[0].first, item, inner, r, at
        cdef tuple how
        cdef int mode
        cdef Names sub_keep, decided
        while c >= 0:
            if (self.nodes[c].flags & F_DELETED) or not (self.nodes[c].kind == K_OBJ or self.nodes[c].kind == K_ARR):
                c = self.nodes[c].next
                continue
            at = self._name(c, self.t.nested)
            if at < 0:
                c = self.nodes[c].next
                continue
            how = self.t.how[at]
            mode = how[0]
            if mode == S_DEFAULTS:
                r = self._keep_only(c, self.defaults)
            elif mode == S_DECIDED:
                r = self._inner_defaults(c)
            else:
                sub_keep = how[1]
                decided = how[2]
                r = 0
                if self.nodes[c].kind == K_OBJ:
                    r = self._shape_item(c, sub_keep, decided)
                else:
                    item = self.nodes[c].first
                    while item >= 0 and r >= 0:
                        if self.nodes[item].kind == K_ARR:
                            r = -1
                        elif self.nodes[item].kind == K_OBJ:
                            inner = self._shape_item(item, sub_keep, decided)
                            r = -1 if inner < 0 else (r | inner)
                        item = self.nodes[item].next
            if r < 0:
                return -1
            cut |= r
            c = self.nodes[c].next
        return cut

    cdef int _shape_item(self, int item, Names keep, Names decided) except -2:
        cdef int cut = self._cut(item, keep), r
        cdef int c = self.nodes[item].first
        while c >= 0:
            if not (self.nodes[c].flags & F_DELETED) and (self.nodes[c].kind == K_OBJ or self.nodes[c].kind == K_ARR):
                if self._name(c, decided) >= 0:
                    r = self._inner_defaults(c)
                else:
                    r = self._keep_only(c, self.defaults)
                if r < 0:
                    return -1
                cut |= r
            c = self.nodes[c].next
        return cut

    # -- judging (proxy.rules: contacts, activity_hours, billing_rate) ---------------------------------

    cdef int _int_member(self, int obj, bytes key, long long* out) except -2:
        """1 with the value when `obj` has an integer `key`; -1 when it has not (not certain)."""
        cdef int m = self._member(obj, key)
        if m < 0 or not (self.nodes[m].flags & F_INT):
            return -1
        out[0] = self.nodes[m].ival
        return 1

    cdef int _ref(self, int obj, bytes name, long long* out) except -2:
        """base.ref_id: 1 with the id; 0 for null; -1 when missing or not an object with an int id."""
        cdef int m = self._member(obj, name)
        if m < 0:
            return -1
        if self.nodes[m].kind == K_NULL:
            return 0
        if self.nodes[m].kind != K_OBJ:
            return -1
        return self._int_member(m, b"id", out)

    cdef bint _str_is(self, int node, bytes text):
        cdef Py_ssize_t n = PyBytes_GET_SIZE(text)
        return (self.nodes[node].kind == K_STR and not (self.nodes[node].flags & F_ESCAPED)
                and self.nodes[node].end - self.nodes[node].start == n + 2
                and memcmp(self.buf + self.nodes[node].start + 1, PyBytes_AS_STRING(text), n) == 0)

    cdef int _judge(self, int kind, object params_, int obj) except -2:
        """1: hidden; 0: shown; 2: not this rule's object (a User among participants); -1: not certain."""
        cdef tuple params = params_
        cdef long long ident, user, matter
        cdef int t, r
        if self.nodes[obj].kind != K_OBJ:
            return -1  # every judge refuses what is not an object
        if kind == J_CONTACT or kind == J_FILTER:
            if kind == J_CONTACT and params[0]:  # participants: only the exact non-contact types pass
                t = self._member(obj, b"type")
                if t < 0 or self.nodes[t].kind != K_STR or (self.nodes[t].flags & F_ESCAPED):
                    return -1
                if (<Names>params[1]).get(self.buf + self.nodes[t].start + 1,
                                          self.nodes[t].end - self.nodes[t].start - 2) >= 0:
                    return 2
            if self._int_member(obj, b"id", &ident) < 0:
                return -1
            return 0 if PySet_Contains(params[2], PyLong_FromLongLong(ident)) else 1
        if kind == J_HOURS:
            t = self._member(obj, b"type")
            if t < 0 or self.nodes[t].kind != K_STR:
                return -1
            if not self._str_is(t, b"TimeEntry"):
                return 0 if not (self.nodes[t].flags & F_ESCAPED) else -1
            r = self._ref(obj, b"user", &user)
            if r < 0:
                return -1
            if r == 1 and user == <long long>params[0]:
                return 0
            if params[1] is None:
                return -1
            r = self._ref(obj, b"matter", &matter)
            if r < 0:
                return -1
            return 1 if r == 0 or not PySet_Contains(params[1], PyLong_FromLongLong(matter)) else 0
        if kind == J_RATE:
            if params[0]:
                return 1
            r = self._ref(obj, b"user", &user)
            if r < 0:
                return -1
            return 0 if r == 1 and user == <long long>params[1] else 1
        return -1

    # -- applying ---------------------------------------------------------------------------------

    cdef int _replace(self, int node, bytes value) except -1:
        self.nodes[node].flags |= F_REPLACED
        self.nodes[node].repl = len(self.repls)
        self.repls.append(value)

    cdef int _set(self, int obj, bytes key, bytes value) except -1:
        """obj[key] = value, as a dict does it: in place when present, else appended last."""
        cdef int m = self._member(obj, key)
        if m >= 0:
            self._replace(m, value)
        else:
            self.appends.append((obj, b'"' + key + b'":' + value))

    cdef bytes _stub(self, int obj):
        """contacts.stub: id, a masked name, type, redacted: true."""
        cdef int ident = self._member(obj, b"id")
        cdef int t = self._member(obj, b"type")
        parts = [b'{"id":', self._value(ident)]
        if self._member(obj, b"name") >= 0:
            parts.append(b',"name":"****"')
        if t >= 0:
            parts.append(b',"type":')
            parts.append(self._value(t))
        parts.append(b',"redacted":true}')
        return b"".join(parts)

    cdef bytes _value(self, int node):
        cdef Writer w = Writer()
        self._emit(w, node)
        return w.take()

    cdef int _hours(self, tuple params, int obj) except -1:
        cdef Names known = params[2]
        cdef Names hours = params[3]
        cdef int c = self.nodes[obj].first
        while c >= 0:
            if not (self.nodes[c].flags & F_DELETED):
                if self._name(c, known) < 0:
                    self.nodes[c].flags |= F_DELETED
                elif self._name(c, hours) >= 0:
                    self._replace(c, b"null")
            c = self.nodes[c].next
        self._set(obj, b"quantity_redacted", b"true")

    cdef int _rate(self, tuple params, int obj) except -1:
        cdef int m
        for key in params[2]:
            m = self._member(obj, key)
            if m >= 0:
                self.nodes[m].flags |= F_DELETED
        self._set(obj, b"redacted", b"true")

    cdef int _seal_obj(self, int obj) except -2:
        """The etag of a changed object replaced by the proxy's tag (transform._reseal); -1 when its
        etag is not a string (the pure path refuses) or is spelled with escapes orjson would not use."""
        cdef int e = self._member(obj, b"etag")
        if e < 0 or self.nodes[e].kind == K_NULL:
            return 0
        if self.nodes[e].kind != K_STR or (self.nodes[e].flags & F_REPLACED):
            return -1
        text = _unescape(self.buf, self.nodes[e].start + 1, self.nodes[e].end - 1)
        if text is None:
            return -1
        self._replace(e, _json_string(self.seal(text)))
        return 1

    # -- writing ------------------------------------------------------------------------------------

    cdef int _emit(self, Writer w, int node) except -1:
        cdef Node* n = &self.nodes[node]
        cdef int c
        cdef bint first = True
        if n.flags & F_REPLACED:
            w.bytes_(self.repls[n.repl])
            return 0
        if n.kind == K_OBJ or n.kind == K_ARR:
            w.byte(123 if n.kind == K_OBJ else 91)
            c = n.first
            while c >= 0:
                if not (self.nodes[c].flags & F_DELETED):
                    if not first:
                        w.byte(44)
                    first = False
                    if n.kind == K_OBJ:
                        w.byte(34)
                        w.raw(self.buf + self.nodes[c].kstart, self.nodes[c].kend - self.nodes[c].kstart)
                        w.byte(34)
                        w.byte(58)
                    self._emit(w, c)
                c = self.nodes[c].next
            if n.kind == K_OBJ and self.appends:
                for obj, member in self.appends:
                    if obj == node:
                        if not first:
                            w.byte(44)
                        first = False
                        w.bytes_(member)
            w.byte(125 if n.kind == K_OBJ else 93)
            return 0
        if n.kind == K_NUM and (n.flags & F_INT):
            w.int_(n.ival)  # -0 as 0; leading + or zeros cannot reach here
            return 0
        w.raw(self.buf + n.start, n.end - n.start)

    # -- one record ---------------------------------------------------------------------------------

    cdef int _record(self, list decisions, object index, bint parsed=False) except -2:
        """Decide the parsed-to-be record at self.buf: R_UNCHANGED, R_CHANGED (edits on the tape),
        R_DROPPED or R_FALLBACK. Its decisions are appended to `decisions`, as (step, object id) or,
        with `index`, (index, step, object id); none are left there on R_FALLBACK."""
        cdef int i, kind, obj, r, n = 0, changed = 0
        cdef Py_ssize_t before = len(decisions)
        cdef int d_step[MAX_DECIDED]
        cdef int d_obj[MAX_DECIDED]
        cdef int d_cont[MAX_DECIDED]
        cdef object key
        cdef list found
        cdef int cont, where
        cdef tuple params
        self.repls = []
        self.appends = []
        if not parsed:
            self.canonical = True
            if self._parse() < 0:
                return R_FALLBACK
        if self.t.shaping:
            r = self._shape()
            if r < 0:
                return R_FALLBACK
            changed |= r
        # decide (on the shaped record, as decide.decide)
        for i in range(self.n_steps):
            key = self.keys[i]
            if key is None:
                found = [(0, -1, -1)]
            elif type(key) is bytes:
                obj = self._member(0, key)
                if obj < 0 or self.nodes[obj].kind == K_NULL:
                    continue
                found = [(obj, 0, -1)]
            else:
                found = self._find(key)
                if found is None:
                    del decisions[before:]
                    return R_FALLBACK  # Location.find would refuse the shape
            for obj, cont, where in found:
                r = self._judge(self.kinds[i], self.params[i], obj)
                if r < 0:
                    del decisions[before:]
                    return R_FALLBACK
                if r == 1:
                    if n == MAX_DECIDED:
                        del decisions[before:]
                        return R_FALLBACK
                    d_step[n] = i
                    d_obj[n] = obj
                    d_cont[n] = cont
                    n += 1
                    if index is None:
                        decisions.append((i, self._id_of(obj), where))
                    else:
                        decisions.append((index, i, self._id_of(obj), where))
        # apply, in the plan's order (decide.apply)
        for r in range(n):
            kind = self.kinds[d_step[r]]
            obj = d_obj[r]
            if kind == J_FILTER:
                return R_DROPPED
            if kind == J_CONTACT:
                if obj == 0:
                    del decisions[before:]
                    return R_FALLBACK  # a whole record stubbed: the pure path (never on the bundled index routes)
                self._replace(obj, self._stub(obj))
            elif self.nodes[obj].kind != K_OBJ or (self.nodes[obj].flags & F_REPLACED):
                del decisions[before:]
                return R_FALLBACK  # judged, so an object; stubbed first by an earlier step: the pure path
            elif kind == J_HOURS:
                self._hours(self.params[d_step[r]], obj)
            else:
                self._rate(self.params[d_step[r]], obj)
        if n:
            changed = 1
        # seal (transform._reseal): each object once: the record once anything changed or the plan
        # says so, each decided object still an object (a stub has no etag), those at the seal_at places
        if self.seal is not None and (n or self.t.has_seal_record or self.t.seal_at):
            sealed = []
            if n or self.t.has_seal_record:
                sealed.append(0)
            for r in range(n):  # a decided object's container (an object holding it), then the object
                if d_cont[r] > 0 and d_cont[r] not in sealed:
                    sealed.append(d_cont[r])
                if d_obj[r] != 0 and d_obj[r] not in sealed:
                    sealed.append(d_obj[r])
            for place in self.t.seal_at:
                if self._seal_places(place, sealed) < 0:
                    del decisions[before:]
                    return R_FALLBACK
            for obj in sealed:
                if self.nodes[obj].kind != K_OBJ or (self.nodes[obj].flags & F_REPLACED):
                    continue
                r = self._seal_obj(obj)
                if r < 0:
                    del decisions[before:]
                    return R_FALLBACK
                changed |= r
        # strip what augmentation added (fields.strip_added)
        if self.t.strip_top.keys or self.t.strip_nested:
            r = self._strip()
            if r < 0:
                del decisions[before:]
                return R_FALLBACK
            changed |= r
        if changed and not self.canonical:
            del decisions[before:]
            return R_FALLBACK  # a changed record is written as orjson would; this one has spellings it would not keep
        return R_CHANGED if changed else R_UNCHANGED

    def run(self, bytes raw):
        """One record: (bytes to send or None when dropped, [(step index, object id or None), ...]),
        or FALLBACK."""
        cdef list decisions = []
        cdef Writer w
        self.buf = <const unsigned char*>PyBytes_AS_STRING(raw)
        self.size = PyBytes_GET_SIZE(raw)
        cdef int r = self._record(decisions, None)
        if r == R_FALLBACK:
            return FALLBACK
        if r == R_DROPPED:
            return None, decisions
        if r == R_UNCHANGED:
            return raw, decisions
        w = Writer()
        self._emit(w, 0)
        return w.take(), decisions

    cdef bint _write(self, Writer w, int r, Py_ssize_t start, Py_ssize_t end, bint first) except -1:
        """A decided record into a page (`,` before all but the first): its bytes [start, end) as
        they came, or the edited tape; nothing when dropped. Whether the page is still empty."""
        if r == R_DROPPED:
            return first
        if not first:
            w.byte(44)
        if r == R_UNCHANGED:
            w.raw(self.buf + start, end - start)
        else:
            self._emit(w, 0)
        return False

    def run_all(self, list records):
        """The records of one index (each bytes-like: msgspec.Raw slices of the body): the `data`
        array to send, `[...]`, and [(record index, step index, object id or None), ...]; or FALLBACK
        when any record needs the pure path (the caller then goes record by record)."""
        cdef list decisions = []
        cdef Writer w = Writer()
        cdef Py_buffer view
        cdef Py_ssize_t i
        cdef int r
        cdef bint first = True
        w.byte(91)
        for i in range(len(records)):
            PyObject_GetBuffer(records[i], &view, PyBUF_SIMPLE)
            try:
                self.buf = <const unsigned char*>view.buf
                self.size = view.len
                r = self._record(decisions, i)
                if r == R_FALLBACK:
                    return FALLBACK
                first = self._write(w, r, 0, self.size, first)
            finally:
                PyBuffer_Release(&view)
        w.byte(93)
        return w.take(), decisions

    def run_body(self, bytes body):
        """A whole index body `{"data": [...], "meta": {...}}` (members in either order, meta
        optional): the `data` array to send, the meta's bytes (None when absent) and
        [(record index, step index, object id or None), ...]; or FALLBACK for anything else (a
        repeated or unknown member, an escaped key, a meta that is not an object, or a record the
        scanner is not sure of): the caller then splits the body as the pure path does."""
        cdef list decisions = []
        cdef Writer w = Writer()
        cdef Py_ssize_t i, end, kstart, kend, meta_start = -1, meta_end = -1, count = 0
        cdef bint seen_data = False, first = True
        cdef int r
        self.buf = <const unsigned char*>PyBytes_AS_STRING(body)
        self.size = PyBytes_GET_SIZE(body)
        i = self._ws(0)
        if i >= self.size or self.buf[i] != 123:
            return FALLBACK
        i = self._ws(i + 1)
        while True:
            if self._key(&i, &kstart, &kend) < 0:
                return FALLBACK
            if kend - kstart == 4 and memcmp(self.buf + kstart, b"data", 4) == 0 and not seen_data:
                seen_data = True
                if i >= self.size or self.buf[i] != 91:
                    return FALLBACK
                w.byte(91)
                i = self._ws(i + 1)
                if i < self.size and self.buf[i] == 93:
                    i = self._ws(i + 1)
                else:
                    while True:
                        self.canonical = True
                        end = self._parse_at(i)
                        if end < 0:
                            return FALLBACK
                        r = self._record(decisions, count, True)
                        if r == R_FALLBACK:
                            return FALLBACK
                        first = self._write(w, r, i, end, first)
                        count += 1
                        i = self._ws(end)
                        if i < self.size and self.buf[i] == 44:
                            i = self._ws(i + 1)
                            continue
                        if i < self.size and self.buf[i] == 93:
                            i = self._ws(i + 1)
                            break
                        return FALLBACK
                w.byte(93)
            elif kend - kstart == 4 and memcmp(self.buf + kstart, b"meta", 4) == 0 and meta_start < 0:
                meta_start = i
                meta_end = self._parse_at(i)
                if meta_end < 0:
                    return FALLBACK
                i = self._ws(meta_end)
            else:
                return FALLBACK
            if i < self.size and self.buf[i] == 44:
                i = self._ws(i + 1)
                continue
            if i < self.size and self.buf[i] == 125 and self._ws(i + 1) == self.size and seen_data:
                break
            return FALLBACK
        meta = None if meta_start < 0 else PyBytes_FromStringAndSize(<const char*>self.buf + meta_start,
                                                                     meta_end - meta_start)
        return w.take(), meta, decisions

    cdef list _find(self, tuple place):
        """Location.find over the tape for `a`, `a[]`, `a.b` and `a[].b`: (object, its container, its
        index in the list or -1) for each non-null object there; None where find raises (not a
        list, not an object on the way) or where an object on the way was replaced by a stub (after
        apply: the scanner does not look into what it wrote)."""
        cdef bytes key = place[0]
        cdef bint is_list = place[1]
        cdef object sub = place[2]
        cdef int m = self._member(0, key), item, at = 0, v
        cdef list out = []
        if m < 0 or self.nodes[m].kind == K_NULL:
            return out
        if not is_list:
            if sub is None:
                out.append((m, 0, -1))
                return out
            if self.nodes[m].kind != K_OBJ or (self.nodes[m].flags & F_REPLACED):
                return None
            v = self._member(m, sub)
            if v >= 0 and self.nodes[v].kind != K_NULL:
                out.append((v, m, -1))
            return out
        if self.nodes[m].kind != K_ARR:
            return None
        item = self.nodes[m].first
        while item >= 0:
            if self.nodes[item].kind != K_NULL:
                if sub is None:
                    out.append((item, m, at))
                else:
                    if self.nodes[item].kind != K_OBJ or (self.nodes[item].flags & F_REPLACED):
                        return None
                    v = self._member(item, sub)
                    if v >= 0 and self.nodes[v].kind != K_NULL:
                        out.append((v, item, at))
            at += 1
            item = self.nodes[item].next
        return out

    cdef int _seal_places(self, tuple place, list sealed) except -2:
        """The objects at one seal_at place added to `sealed` (once each); -1 where find refuses."""
        cdef list found = self._find(place)
        if found is None:
            return -1
        for obj, _, _ in found:
            if obj not in sealed:
                sealed.append(obj)
        return 0

    cdef object _id_of(self, int obj):
        cdef long long ident
        if self.nodes[obj].kind == K_OBJ and self._int_member(obj, b"id", &ident) > 0:
            return ident
        return None

    cdef int _strip(self) except -2:
        cdef int c = self.nodes[0].first, item, m, cut = 0
        cdef Names subs
        while c >= 0:
            if not (self.nodes[c].flags & F_DELETED):
                if self._name(c, self.t.strip_top) >= 0:
                    self.nodes[c].flags |= F_DELETED
                    cut = 1
            c = self.nodes[c].next
        for name, subs in self.t.strip_nested:
            m = self._member(0, name)
            if m < 0:
                continue
            if self.nodes[m].flags & F_REPLACED:
                return -1
            if self.nodes[m].kind == K_OBJ:
                cut |= self._cut_names(m, subs)
            elif self.nodes[m].kind == K_ARR:
                item = self.nodes[m].first
                while item >= 0:
                    if self.nodes[item].kind == K_OBJ:
                        if self.nodes[item].flags & F_REPLACED:
                            return -1
                        cut |= self._cut_names(item, subs)
                    item = self.nodes[item].next
        return cut

    cdef int _cut_names(self, int obj, Names names):
        cdef int c = self.nodes[obj].first, cut = 0
        while c >= 0:
            if not (self.nodes[c].flags & F_DELETED) and self._name(c, names) >= 0:
                self.nodes[c].flags |= F_DELETED
                cut = 1
            c = self.nodes[c].next
        return cut


cdef class Writer:
    cdef char* data
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    def __cinit__(self):
        self.cap = 1024
        self.n = 0
        self.data = <char*>malloc(self.cap)
        if self.data == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.data)

    cdef inline int _room(self, Py_ssize_t more) except -1:
        if self.n + more <= self.cap:
            return 0
        return self._grow(more)

    cdef int _grow(self, Py_ssize_t more) except -1:
        cdef char* grown
        cdef Py_ssize_t cap = self.cap
        while cap < self.n + more:
            cap *= 2
        grown = <char*>realloc(self.data, cap)
        if grown == NULL:
            raise MemoryError()
        self.data = grown
        self.cap = cap
        return 0

    cdef inline int byte(self, char c) except -1:
        self._room(1)
        self.data[self.n] = c
        self.n += 1

    cdef inline int raw(self, const unsigned char* p, Py_ssize_t k) except -1:
        self._room(k)
        memcpy(self.data + self.n, p, k)
        self.n += k

    cdef inline int bytes_(self, bytes b) except -1:
        self.raw(<const unsigned char*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))

    cdef int int_(self, long long v) except -1:
        cdef char tmp[24]
        cdef int k = 0
        cdef unsigned long long u
        if v < 0:
            self.byte(45)
            u = <unsigned long long>(-(v + 1)) + 1
        else:
            u = <unsigned long long>v
        while True:
            tmp[k] = <char>(48 + u % 10)
            k += 1
            u //= 10
            if u == 0:
                break
        self._room(k)
        while k > 0:
            k -= 1
            self.data[self.n] = tmp[k]
            self.n += 1

    cdef bytes take(self):
        return PyBytes_FromStringAndSize(self.data, self.n)


cdef object _unescape(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end):
    """A string's content (between the quotes) decoded; None when it holds an escape this scanner
    does not decode (the parser has let through only the simple ones)."""
    cdef Py_ssize_t i = start, k = 0
    cdef unsigned char c
    cdef char* out = <char*>malloc(end - start + 1)
    if out == NULL:
        raise MemoryError()
    try:
        while i < end:
            c = buf[i]
            if c != 92:
                out[k] = c
                k += 1
                i += 1
                continue
            c = buf[i + 1]
            if c == 34 or c == 92 or c == 47:
                out[k] = c
            elif c == 98:
                out[k] = 8
            elif c == 102:
                out[k] = 12
            elif c == 110:
                out[k] = 10
            elif c == 114:
                out[k] = 13
            elif c == 116:
                out[k] = 9
            else:
                return None
            k += 1
            i += 2
        return PyUnicode_DecodeUTF8(out, k, "strict")
    finally:
        free(out)


cdef bytes _json_string(str text):
    """A str as orjson writes it: `"` and backslash escaped, control characters as \\n or \\u00xx."""
    cdef bytes data = text.encode("utf-8")
    cdef Writer w = Writer()
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t i = 0, run, n = PyBytes_GET_SIZE(data)
    cdef unsigned char c
    w.byte(34)
    while i < n:
        run = i
        while i < n and (p[i] >= 128 or _PLAIN[p[i]]):
            i += 1
        w.raw(p + run, i - run)
        if i >= n:
            break
        c = p[i]
        i += 1
        if c == 34 or c == 92:
            w.byte(92)
            w.byte(c)
        elif c == 8:
            w.raw(b"\\b", 2)
        elif c == 9:
            w.raw(b"\\t", 2)
        elif c == 10:
            w.raw(b"\\n", 2)
        elif c == 12:
            w.raw(b"\\f", 2)
        elif c == 13:
            w.raw(b"\\r", 2)
        else:
            w.raw(b"\\u00", 4)
            w.byte(b"0123456789abcdef"[c >> 4])
            w.byte(b"0123456789abcdef"[c & 15])
    w.byte(34)
    return w.take()

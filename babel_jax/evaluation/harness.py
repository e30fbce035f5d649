"""Test-harness helpers appended after a translated function: deep, by-value equality and a check
that exits with FAILED_EXIT_CODE on the first mismatch.

Equality mirrors Python's `==` on test values: containers element by element (dicts by key,
ignoring order), None against null/nil/empty Optional, and floats within an absolute 1e-6 (what
HumanEval's own float asserts allow).
"""

FAILED_EXIT_CODE = 3  # a check failed; any other non-zero exit is a crash of the program itself
# The tests print this after their last check; execution.run_program replaces it with a fresh
# random token per run, and only an exit status 0 with that token in stdout counts as passed (an
# early exit(0) from inside the function is a failure).
CHECKS_DONE = 'BABEL_CHECKS_DONE_TOKEN'

PHP = '''
function babel_equal($actual, $expected) {
    if (is_float($expected) || is_float($actual)) {
        return (is_int($actual) || is_float($actual)) && (is_int($expected) || is_float($expected))
            && abs($actual - $expected) <= 1e-6;
    }
    if (is_array($expected)) {
        if (!is_array($actual) || count($actual) != count($expected)) {
            return false;
        }
        if (array_is_list($expected)) {
            $actual = array_values($actual);
        }
        foreach ($expected as $key => $value) {
            if (!array_key_exists($key, $actual) || !babel_equal($actual[$key], $value)) {
                return false;
            }
        }
        return true;
    }
    return $actual === $expected;
}

function babel_check($index, $actual, $expected) {
    if (!babel_equal($actual, $expected)) {
        fwrite(STDERR, "test $index failed: got " . var_export($actual, true) . "\\n");
        exit(3);
    }
}
'''

JAVASCRIPT = '''
function babelEqual(actual, expected) {
  if (expected === undefined || expected === null) {
    return actual === undefined || actual === null;
  }
  if (typeof expected === "number") {
    return typeof actual === "number" && Math.abs(actual - expected) <= 1e-6;
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length &&
        expected.every((value, i) => babelEqual(actual[i], value));
  }
  if (typeof expected === "object") {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) {
      return false;
    }
    const keys = Object.keys(expected);
    return keys.length === Object.keys(actual).length && keys.every((key) =>
        Object.hasOwn(actual, key) && babelEqual(actual[key], expected[key]));
  }
  return actual === expected;
}

function babelCheck(index, actual, expected) {
  if (!babelEqual(actual, expected)) {
    console.error(`test ${index} failed: got ${JSON.stringify(actual)}`);
    process.exit(3);
  }
}
'''

# The prompt imports these so a completion can use them; the tests keep each one used.
GO_IMPORTS = ('fmt', 'math', 'os', 'sort', 'strconv', 'strings', 'unicode')
_GO_USES = {'fmt': 'Sprint', 'math': 'Abs', 'os': 'Exit', 'sort': 'Ints', 'strconv': 'Itoa',
            'strings': 'Contains', 'unicode': 'IsUpper'}

GO = ''.join(f'var _ = {name}.{_GO_USES[name]}\n' for name in GO_IMPORTS) + '''
func babelEqualPlain[T comparable](a, b T) bool { return a == b }

func babelEqualFloat(a, b float64) bool { return math.Abs(a-b) <= 1e-6 }

func babelEqualSlice[T any](a, b []T, equal func(T, T) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func babelEqualMap[K comparable, V any](a, b map[K]V, equal func(V, V) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		w, ok := a[k]
		if !ok || !equal(w, v) {
			return false
		}
	}
	return true
}

func babelEqualPtr[T any](a, b *T, equal func(T, T) bool) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return equal(*a, *b)
}

func babelPtr[T any](v T) *T { return &v }

func babelFail(index int, actual interface{}) {
	fmt.Fprintf(os.Stderr, "test %d failed: got %#v\\n", index, actual)
	os.Exit(3)
}
'''

CPP = '''
// Declared first so that each definition sees every overload (the arguments' namespace is std).
template <typename T> bool babel_equal(const T& a, const T& b);
bool babel_equal(const double& a, const double& b);
template <typename T> bool babel_equal(const std::vector<T>& a, const std::vector<T>& b);
template <typename K, typename V>
bool babel_equal(const std::map<K, V>& a, const std::map<K, V>& b);
template <typename T> bool babel_equal(const std::optional<T>& a, const std::optional<T>& b);
template <typename... T> bool babel_equal(const std::tuple<T...>& a, const std::tuple<T...>& b);

template <typename T> bool babel_equal(const T& a, const T& b) { return a == b; }

bool babel_equal(const double& a, const double& b) { return std::abs(a - b) <= 1e-6; }

template <typename T> bool babel_equal(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!babel_equal(a[i], b[i])) return false;
    }
    return true;
}

template <typename K, typename V>
bool babel_equal(const std::map<K, V>& a, const std::map<K, V>& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : b) {
        auto it = a.find(key);
        if (it == a.end() || !babel_equal(it->second, value)) return false;
    }
    return true;
}

template <typename T> bool babel_equal(const std::optional<T>& a, const std::optional<T>& b) {
    if (!a.has_value() || !b.has_value()) return a.has_value() == b.has_value();
    return babel_equal(*a, *b);
}

template <typename... T> bool babel_equal(const std::tuple<T...>& a, const std::tuple<T...>& b) {
    return std::apply([&](const auto&... x) {
        return std::apply([&](const auto&... y) { return (babel_equal(x, y) && ...); }, b);
    }, a);
}

void babel_check(int index, bool ok) {
    if (!ok) {
        std::cerr << "test " << index << " failed" << std::endl;
        std::exit(3);
    }
}
'''

CSHARP = '''
    static bool BabelEqual(object a, object b) {
        if (a == null || b == null) {
            return a == null && b == null;
        }
        if (a is double || b is double) {
            return (a is double || a is long) && (b is double || b is long)
                && Math.Abs(Convert.ToDouble(a) - Convert.ToDouble(b)) <= 1e-6;
        }
        if (a is string || b is string) {
            return a.Equals(b);
        }
        var ad = a as System.Collections.IDictionary;
        var bd = b as System.Collections.IDictionary;
        if (ad != null || bd != null) {
            if (ad == null || bd == null || ad.Count != bd.Count) return false;
            foreach (System.Collections.DictionaryEntry entry in bd) {
                if (!ad.Contains(entry.Key)) return false;
                if (!BabelEqual(ad[entry.Key], entry.Value)) return false;
            }
            return true;
        }
        var al = a as System.Collections.IList;
        var bl = b as System.Collections.IList;
        if (al != null || bl != null) {
            if (al == null || bl == null || al.Count != bl.Count) return false;
            for (int i = 0; i < al.Count; i++) {
                if (!BabelEqual(al[i], bl[i])) return false;
            }
            return true;
        }
        Type type = a.GetType();
        if (type.IsGenericType && type.FullName.StartsWith("System.Tuple`")) {
            if (type != b.GetType()) return false;
            foreach (var property in type.GetProperties()) {
                if (!BabelEqual(property.GetValue(a), property.GetValue(b))) return false;
            }
            return true;
        }
        return a.Equals(b);
    }

    static void BabelCheck(int index, object actual, object expected) {
        if (!BabelEqual(actual, expected)) {
            Console.Error.WriteLine("test " + index + " failed");
            Environment.Exit(3);
        }
    }
'''

JAVA = '''
    static boolean babelEqual(Object a, Object b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (a instanceof Double || b instanceof Double) {
            return a instanceof Number && b instanceof Number
                && Math.abs(((Number) a).doubleValue() - ((Number) b).doubleValue()) <= 1e-6;
        }
        if (a instanceof List || b instanceof List) {
            if (!(a instanceof List) || !(b instanceof List)) return false;
            List<?> x = (List<?>) a, y = (List<?>) b;
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) {
                if (!babelEqual(x.get(i), y.get(i))) return false;
            }
            return true;
        }
        if (a instanceof Map || b instanceof Map) {
            if (!(a instanceof Map) || !(b instanceof Map)) return false;
            Map<?, ?> x = (Map<?, ?>) a, y = (Map<?, ?>) b;
            if (x.size() != y.size()) return false;
            for (Map.Entry<?, ?> entry : y.entrySet()) {
                if (!x.containsKey(entry.getKey())) return false;
                if (!babelEqual(x.get(entry.getKey()), entry.getValue())) return false;
            }
            return true;
        }
        if (a instanceof Optional || b instanceof Optional) {
            if (!(a instanceof Optional) || !(b instanceof Optional)) return false;
            Optional<?> x = (Optional<?>) a, y = (Optional<?>) b;
            return x.isPresent() == y.isPresent() && (x.isEmpty() || babelEqual(x.get(), y.get()));
        }
        if (a instanceof Record && a.getClass() == b.getClass()) {
            try {
                for (java.lang.reflect.RecordComponent c : a.getClass().getRecordComponents()) {
                    Object x = c.getAccessor().invoke(a), y = c.getAccessor().invoke(b);
                    if (!babelEqual(x, y)) return false;
                }
                return true;
            } catch (ReflectiveOperationException e) {
                return false;
            }
        }
        return a.equals(b);
    }

    static void babelCheck(int index, Object actual, Object expected) {
        if (!babelEqual(actual, expected)) {
            System.err.println("test " + index + " failed: got " + actual);
            System.exit(3);
        }
    }
'''

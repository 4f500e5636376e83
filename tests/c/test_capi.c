/* The C API from C: load a model from its path and from a freed memory buffer, check the info
 * functions, run it (also at 2 threads) and compare the outputs byte for byte with an expected
 * file, then walk the error paths. Driven by tests/test_capi.py; prints the model's info and
 * every error message for it to check, and exits 0 only if every check passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intinfer/intinfer.h"

static const char* kUsage =
    "usage: intinfer-capi-test MODEL.iif INPUT.raw DIMS EXPECTED.raw\n"
    "  INPUT.raw     the bytes of the model's single input, in its dtype\n"
    "  DIMS          the input's shape, e.g. 3x6x6x3\n"
    "  EXPECTED.raw  the bytes of every output, concatenated in output order\n";

#define MAX_RANK 8

static int g_failures = 0;

static void check(int ok, const char* what) {
  if (!ok) {
    ++g_failures;
    printf("FAILED: %s\n", what);
  }
}

/* Checks that a call failed with `want` and a non-empty message containing `needle` (if any). */
static void check_error(intinfer_status got, intinfer_status want, const char* needle, const char* what) {
  const char* msg = intinfer_last_error();
  printf("error %s (%s): %s\n", what, intinfer_status_name(got), msg);
  if (got != want) {
    ++g_failures;
    printf("FAILED: %s: status %s, expected %s\n", what, intinfer_status_name(got), intinfer_status_name(want));
  } else if (msg[0] == '\0' || (needle != NULL && strstr(msg, needle) == NULL)) {
    ++g_failures;
    printf("FAILED: %s: message does not mention '%s'\n", what, needle ? needle : "anything");
  }
}

static void check_ok(intinfer_status s, const char* what) {
  if (s != INTINFER_OK) {
    ++g_failures;
    printf("FAILED: %s: %s: %s\n", what, intinfer_status_name(s), intinfer_last_error());
  }
}

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  unsigned char* data = NULL;
  long n;
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    data = (unsigned char*)malloc((size_t)n + 1); /* + 1: malloc(0) may return NULL */
    if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    }
    *size = (size_t)n;
  }
  fclose(f);
  return data;
}

static int parse_dims(const char* s, int64_t* dims) {
  int rank = 0;
  char* end;
  for (;;) {
    long long d = strtoll(s, &end, 10);
    if (end == s || d < 1 || rank == MAX_RANK) return -1;
    dims[rank++] = (int64_t)d;
    if (*end == '\0') return rank;
    if (*end != 'x') return -1;
    s = end + 1;
  }
}

static size_t dtype_size(intinfer_dtype t) { return t == INTINFER_UINT8 || t == INTINFER_INT8 ? 1 : 4; }

static const char* dtype_str(intinfer_dtype t) {
  switch (t) {
    case INTINFER_FLOAT32: return "float32";
    case INTINFER_UINT8: return "uint8";
    case INTINFER_INT8: return "int8";
    case INTINFER_INT32: return "int32";
  }
  return "?";
}

static void print_info(const char* kind, int i, const intinfer_tensor_info* t) {
  int d;
  printf("%s %d %s %s [", kind, i, t->name, dtype_str(t->dtype));
  if (t->rank < 0) printf("unknown");
  for (d = 0; d < t->rank; ++d) printf("%s%lld", d ? "," : "", (long long)t->dims[d]);
  if (t->quantized)
    printf("] scale %.9g zero_point %d", t->scale, (int)t->zero_point);
  else
    printf("] not quantized");
  if (t->id_rows > 0) printf(" ids [0, %lld)", (long long)t->id_rows);
  printf("\n");
}

static int same_info(const intinfer_tensor_info* a, const intinfer_tensor_info* b) {
  return strcmp(a->name, b->name) == 0 && a->dtype == b->dtype && a->rank == b->rank &&
         (a->rank <= 0 || memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(int64_t)) == 0) &&
         a->quantized == b->quantized && a->scale == b->scale && a->zero_point == b->zero_point &&
         a->id_rows == b->id_rows;
}

/* Checks the model's counts and info against the input given on the command line and prints
 * the info. Returns the number of outputs, or -1 when the model does not fit the arguments. */
static int check_info(const intinfer_model* m, const intinfer_tensor* input) {
  intinfer_tensor_info info;
  int32_t n_in = -1, n_out = -1, i, d;
  check_ok(intinfer_model_input_count(m, &n_in), "input count");
  check_ok(intinfer_model_output_count(m, &n_out), "output count");
  if (n_in != 1 || n_out < 1) {
    printf("FAILED: the model has %d inputs and %d outputs; this test takes 1 input and 1 or more outputs\n",
           (int)n_in, (int)n_out);
    ++g_failures;
    return -1;
  }
  check_ok(intinfer_model_input_info(m, 0, &info), "input info");
  print_info("input", 0, &info);
  check(info.name != NULL && info.name[0] != '\0', "the input has a name");
  check(info.rank == input->rank, "the input's rank matches DIMS");
  for (d = 0; d < info.rank && d < input->rank; ++d)
    check(info.dims[d] == -1 || info.dims[d] == input->dims[d], "a fixed input dimension matches DIMS");
  check(input->byte_size % dtype_size(info.dtype) == 0, "INPUT.raw holds whole elements of the input's dtype");
  for (i = 0; i < n_out; ++i) {
    check_ok(intinfer_model_output_info(m, i, &info), "output info");
    print_info("output", i, &info);
    check(info.name != NULL && info.name[0] != '\0', "the output has a name");
  }
  return n_out;
}

/* Runs the session on the input and compares the concatenated outputs with `expected`. */
static void check_run(intinfer_session* s, const intinfer_model* m, const intinfer_tensor* input, int n_out,
                      const unsigned char* expected, size_t expected_size, const char* what) {
  size_t offset = 0;
  int i, d;
  if (intinfer_session_run(s, input, 1) != INTINFER_OK) {
    printf("FAILED: %s: run: %s\n", what, intinfer_last_error());
    ++g_failures;
    return;
  }
  for (i = 0; i < n_out; ++i) {
    intinfer_tensor out;
    intinfer_tensor_info info;
    size_t elements = 1, k;
    check_ok(intinfer_session_output(s, i, &out), "session output");
    check_ok(intinfer_model_output_info(m, i, &info), "output info");
    /* An output of unknown rank (-1 in its info) has only its dtype to check. */
    check(out.dtype == info.dtype && (info.rank < 0 || out.rank == info.rank),
          "an output's dtype and rank are those of its info");
    for (d = 0; d < out.rank; ++d) {
      check(info.rank < 0 || info.dims[d] == -1 || info.dims[d] == out.dims[d],
            "a fixed output dimension is that of its info");
      elements *= (size_t)out.dims[d];
    }
    check(out.byte_size == elements * dtype_size(out.dtype), "an output's byte size follows its shape");
    if (out.byte_size > expected_size - offset) {
      printf("FAILED: %s: output %d (%lu bytes) runs past EXPECTED.raw (%lu bytes)\n", what, i,
             (unsigned long)out.byte_size, (unsigned long)expected_size);
      ++g_failures;
      return;
    }
    for (k = 0; k < out.byte_size; ++k) {
      if (((const unsigned char*)out.data)[k] != expected[offset + k]) {
        printf("FAILED: %s: output %d differs from EXPECTED.raw at byte %lu\n", what, i, (unsigned long)k);
        ++g_failures;
        return;
      }
    }
    offset += out.byte_size;
  }
  if (offset != expected_size) {
    printf("FAILED: %s: the outputs take %lu bytes, EXPECTED.raw has %lu\n", what, (unsigned long)offset,
           (unsigned long)expected_size);
    ++g_failures;
  }
}

/* Loading errors: a missing file, corrupt and truncated buffers, NULL arguments. */
static void check_load_errors(const char* path, const unsigned char* file, size_t size) {
  intinfer_model* m = NULL;
  intinfer_options* tight = NULL;
  unsigned char* bad = (unsigned char*)malloc(size + 1);
  char* missing = (char*)malloc(strlen(path) + sizeof(".missing"));
  int32_t n;
  if (bad == NULL || missing == NULL) {
    check(0, "memory for the error tests");
    free(bad);
    free(missing);
    return;
  }
  sprintf(missing, "%s.missing", path);
  check_error(intinfer_model_load_file(missing, NULL, &m), INTINFER_ERROR_MODEL, missing, "missing file");
  memcpy(bad, file, size);
  bad[0] ^= 0xff;
  check_error(intinfer_model_load_buffer(bad, size, NULL, &m), INTINFER_ERROR_MODEL, "magic", "corrupt magic");
  check_error(intinfer_model_load_buffer(file, size / 2, NULL, &m), INTINFER_ERROR_MODEL, NULL, "truncated to half");
  check_error(intinfer_model_load_buffer(file, 20, NULL, &m), INTINFER_ERROR_MODEL, "header", "truncated to 20 bytes");
  check_error(intinfer_model_load_buffer(file, 0, NULL, &m), INTINFER_ERROR_MODEL, NULL, "empty buffer");
  check(m == NULL, "failed loads leave *out alone");

  check_error(intinfer_model_load_file(NULL, NULL, &m), INTINFER_ERROR_ARGUMENT, "path", "NULL path");
  check_error(intinfer_model_load_file(path, NULL, NULL), INTINFER_ERROR_ARGUMENT, "out", "NULL out");
  check_error(intinfer_model_load_buffer(NULL, size, NULL, &m), INTINFER_ERROR_ARGUMENT, "data", "NULL buffer");
  check_error(intinfer_model_input_count(NULL, &n), INTINFER_ERROR_ARGUMENT, "model", "NULL model");
  check_error(intinfer_session_create(NULL, NULL), INTINFER_ERROR_ARGUMENT, "model", "NULL model for a session");
  check_error(intinfer_session_run(NULL, NULL, 0), INTINFER_ERROR_ARGUMENT, "session", "NULL session");
  check_error(intinfer_options_create(NULL), INTINFER_ERROR_ARGUMENT, "out", "NULL options out");
  check_error(intinfer_options_set_num_threads(NULL, 2), INTINFER_ERROR_ARGUMENT, "options", "NULL options");
  check_ok(intinfer_options_create(&tight), "options");
  check_error(intinfer_options_set_max_macs(tight, 0), INTINFER_ERROR_ARGUMENT, "max_macs", "a zero limit");
  check_ok(intinfer_options_set_max_arena_bytes(tight, (uint64_t)1 << 40), "an arena limit");
  check_ok(intinfer_options_set_max_macs(tight, (uint64_t)1 << 40), "a MAC limit");
  /* The test models' inputs take more than a byte, and inputs are checked first. */
  check_ok(intinfer_options_set_max_tensor_bytes(tight, 1), "a 1-byte tensor limit");
  check_error(intinfer_model_load_buffer(file, size, tight, &m), INTINFER_ERROR_MODEL, "max_tensor_bytes",
              "an input above the limit");
  intinfer_options_free(tight);
  free(bad);
  free(missing);
}

/* Info and output queries with bad arguments, and inputs of the wrong count, rank, shape,
 * dtype or size; `good` is a valid input of model `m`, `s` a session of it. */
static void check_input_errors(const intinfer_model* m, intinfer_session* s, const intinfer_tensor* good) {
  intinfer_tensor bad;
  intinfer_tensor_info info;
  intinfer_tensor out;
  int64_t dims[MAX_RANK + 1];
  int32_t n;
  int d;
  check_ok(intinfer_model_input_info(m, 0, &info), "input info");
  check_error(intinfer_model_input_info(m, 1, &info), INTINFER_ERROR_ARGUMENT, "out of range", "input index 1");
  check_error(intinfer_model_output_info(m, -1, &info), INTINFER_ERROR_ARGUMENT, "out of range", "output index -1");
  check_error(intinfer_model_output_count(m, NULL), INTINFER_ERROR_ARGUMENT, "out", "NULL count");
  check_ok(intinfer_model_input_info(m, 0, &info), "input info");

  check_error(intinfer_session_run(s, good, 0), INTINFER_ERROR_INPUT, "inputs", "no inputs");
  check_error(intinfer_session_output(s, 0, &out), INTINFER_ERROR_ARGUMENT, "no outputs", "output after a failed run");
  check_error(intinfer_session_run(s, NULL, 1), INTINFER_ERROR_ARGUMENT, "inputs", "NULL inputs");
  check_error(intinfer_session_run(s, good, -1), INTINFER_ERROR_ARGUMENT, "negative", "negative input count");

  memcpy(dims, good->dims, (size_t)good->rank * sizeof(int64_t));
  dims[good->rank] = 1;
  bad = *good;
  bad.dims = dims;
  bad.rank = good->rank + 1;
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_INPUT, info.name, "one dimension too many");
  for (d = 0; d < info.rank; ++d) {
    if (info.dims[d] > 1) {
      bad = *good;
      bad.dims = dims;
      dims[d] = info.dims[d] - 1;
      bad.byte_size = good->byte_size / (size_t)info.dims[d] * (size_t)dims[d];
      check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_INPUT, "expected shape", "a fixed dimension too small");
      dims[d] = info.dims[d];
      break;
    }
  }
  bad = *good;
  bad.byte_size = good->byte_size - 1;
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_INPUT, "byte_size", "one byte short");
  bad = *good;
  switch (good->dtype) {
    case INTINFER_FLOAT32: bad.dtype = INTINFER_INT32; break;
    case INTINFER_INT32: bad.dtype = INTINFER_FLOAT32; break;
    case INTINFER_UINT8: bad.dtype = INTINFER_INT8; break;
    case INTINFER_INT8: bad.dtype = INTINFER_UINT8; break;
  }
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_INPUT, "dtype", "wrong dtype of the same size");
  bad.dtype = 99;
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_ARGUMENT, "dtype", "unknown dtype");
  bad = *good;
  bad.data = NULL;
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_ARGUMENT, "data", "NULL data");
  bad = *good;
  bad.dims = NULL;
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_ARGUMENT, "dims", "NULL dims");
  bad.rank = -1;
  check_error(intinfer_session_run(s, &bad, 1), INTINFER_ERROR_ARGUMENT, "rank", "negative rank");

  check_ok(intinfer_session_run(s, good, 1), "a run after failed ones");
  check_error(intinfer_session_output(s, 99, &out), INTINFER_ERROR_ARGUMENT, "out of range", "output index 99");
  check_ok(intinfer_model_input_count(m, &n), "input count");
  check(strstr(intinfer_last_error(), "out of range") != NULL, "a successful call leaves the last error alone");
}

int main(int argc, char** argv) {
  const char* model_path;
  unsigned char *file, *input_bytes, *expected;
  size_t file_size = 0, input_size = 0, expected_size = 0;
  int64_t dims[MAX_RANK];
  intinfer_tensor input;
  intinfer_tensor_info info_a, info_b;
  intinfer_model *a = NULL, *b = NULL;
  intinfer_options* options = NULL;
  intinfer_session *sa = NULL, *sb = NULL;
  int32_t major = 0, minor = -1, threads = 0;
  int rank, n_out, i;

  if (argc != 5 || (rank = parse_dims(argv[3], dims)) < 1) {
    fputs(kUsage, stderr);
    return 2;
  }
  model_path = argv[1];
  file = read_file(model_path, &file_size);
  input_bytes = read_file(argv[2], &input_size);
  expected = read_file(argv[4], &expected_size);
  if (file == NULL || input_bytes == NULL || expected == NULL) {
    fprintf(stderr, "intinfer-capi-test: cannot read %s\n", file == NULL ? argv[1] : input_bytes == NULL ? argv[2] : argv[4]);
    return 2;
  }

  intinfer_format_version(&major, &minor);
  printf("version %s format %d.%d\n", intinfer_version(), (int)major, (int)minor);
  check(strcmp(intinfer_version(), INTINFER_VERSION) == 0, "the library's version is the header's");
  check(major >= 1 && minor >= 0, "a format version");
  check(strcmp(intinfer_status_name(INTINFER_ERROR_INPUT), "ERROR_INPUT") == 0, "status names");

  check_ok(intinfer_model_load_file(model_path, NULL, &a), "load from the path");
  if (a == NULL) return 1;
  check_ok(intinfer_model_input_info(a, 0, &info_a), "input info");
  input.dtype = info_a.dtype;
  input.rank = rank;
  input.dims = dims;
  input.data = input_bytes;
  input.byte_size = input_size;
  n_out = check_info(a, &input);
  if (n_out < 0) return 1;

  check_load_errors(model_path, file, file_size);
  check_ok(intinfer_options_create(&options), "options");
  check_error(intinfer_options_set_num_threads(options, -1), INTINFER_ERROR_ARGUMENT, "num_threads", "-1 threads");
  check_error(intinfer_options_set_num_threads(options, 1 << 20), INTINFER_ERROR_ARGUMENT, "maximum",
              "more threads than the maximum");
  check_ok(intinfer_options_set_num_threads(options, 2), "2 threads");
  check_error(intinfer_options_set_plan_cache_size(options, -1), INTINFER_ERROR_ARGUMENT, "plan_cache_size",
              "a negative plan cache size");
  check_ok(intinfer_options_set_plan_cache_size(options, 1), "a plan cache of 1");
  check_ok(intinfer_model_load_buffer(file, file_size, options, &b), "load from a buffer");
  intinfer_options_free(options);
  /* The model must not need the caller's bytes after the load. */
  memset(file, 0xa5, file_size);
  free(file);
  if (b == NULL) return 1;
  check_ok(intinfer_model_num_threads(b, &threads), "thread count");
  check(threads == 2, "the buffer model has 2 threads");
  check_ok(intinfer_model_input_info(b, 0, &info_b), "input info");
  check(same_info(&info_a, &info_b), "the same input info from the path and the buffer");
  for (i = 0; i < n_out; ++i) {
    check_ok(intinfer_model_output_info(a, i, &info_a), "output info");
    check_ok(intinfer_model_output_info(b, i, &info_b), "output info");
    check(same_info(&info_a, &info_b), "the same output info from the path and the buffer");
  }

  check_ok(intinfer_session_create(a, &sa), "session of the path model");
  check_ok(intinfer_session_create(b, &sb), "session of the buffer model");
  /* A session keeps its model alive after the model's handle is freed. */
  intinfer_model_free(b);
  if (sa == NULL || sb == NULL) return 1;
  check_run(sa, a, &input, n_out, expected, expected_size, "path model");
  check_run(sb, a, &input, n_out, expected, expected_size, "buffer model, 2 threads");
  check_run(sa, a, &input, n_out, expected, expected_size, "path model, second run");
  check_input_errors(a, sa, &input);
  check_run(sa, a, &input, n_out, expected, expected_size, "path model after errors");

  intinfer_session_free(sa);
  intinfer_session_free(sb);
  intinfer_model_free(a);
  intinfer_model_free(NULL);
  intinfer_session_free(NULL);
  intinfer_options_free(NULL);
  free(input_bytes);
  free(expected);
  if (g_failures) {
    printf("%d checks failed\n", g_failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}

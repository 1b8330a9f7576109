/* A byte-string key-value store: a hash table with chaining that doubles as it fills. */
#ifndef RESP_STORE_H
#define RESP_STORE_H

#include <stddef.h>

struct kv_entry;

struct kv_store {
    struct kv_entry **buckets;
    size_t bucket_count;
    size_t count;
};

void kv_init(struct kv_store *store);
void kv_free(struct kv_store *store);
/* Copies key and value; returns 0, or -1 when out of memory (the store is unchanged). */
int kv_set(struct kv_store *store, const unsigned char *key, size_t key_len,
           const unsigned char *value, size_t value_len);
/* Returns 1 and points *value into the store (valid until the next change), or 0. */
int kv_get(const struct kv_store *store, const unsigned char *key, size_t key_len,
           const unsigned char **value, size_t *value_len);
/* Returns 1 when the key existed. */
int kv_del(struct kv_store *store, const unsigned char *key, size_t key_len);
void kv_clear(struct kv_store *store);

#endif

/* The key-value store behind resp_kv: yours, compiled by the generated Makefile because the
 * spec lists it under `sources`. */
#include "resp_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct kv_entry {
    struct kv_entry *next;
    uint64_t hash;
    size_t key_len, value_len;
    unsigned char *value;
    unsigned char key[];
};

/* FNV-1a: simple, and fine for a store whose keys the server's users choose. */
static uint64_t kv_hash(const unsigned char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < len; i++) {
        h = (h ^ key[i]) * 1099511628211ull;
    }
    return h;
}

void kv_init(struct kv_store *store)
{
    store->buckets = NULL;
    store->bucket_count = 0;
    store->count = 0;
}

void kv_clear(struct kv_store *store)
{
    size_t i;
    for (i = 0; i < store->bucket_count; i++) {
        struct kv_entry *e = store->buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            free(e->value);
            free(e);
            e = next;
        }
        store->buckets[i] = NULL;
    }
    store->count = 0;
}

void kv_free(struct kv_store *store)
{
    kv_clear(store);
    free(store->buckets);
    kv_init(store);
}

static struct kv_entry **kv_slot(const struct kv_store *store, const unsigned char *key, size_t key_len,
                                 uint64_t hash)
{
    struct kv_entry **slot = &store->buckets[hash & (store->bucket_count - 1)];
    while (*slot != NULL
           && !((*slot)->hash == hash && (*slot)->key_len == key_len && memcmp((*slot)->key, key, key_len) == 0)) {
        slot = &(*slot)->next;
    }
    return slot;
}

static int kv_grow(struct kv_store *store)
{
    size_t count = store->bucket_count == 0 ? 64 : store->bucket_count * 2;
    struct kv_entry **buckets = calloc(count, sizeof *buckets);
    size_t i;
    if (buckets == NULL) {
        return -1;
    }
    for (i = 0; i < store->bucket_count; i++) {
        struct kv_entry *e = store->buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            e->next = buckets[e->hash & (count - 1)];
            buckets[e->hash & (count - 1)] = e;
            e = next;
        }
    }
    free(store->buckets);
    store->buckets = buckets;
    store->bucket_count = count;
    return 0;
}

int kv_set(struct kv_store *store, const unsigned char *key, size_t key_len,
           const unsigned char *value, size_t value_len)
{
    uint64_t hash = kv_hash(key, key_len);
    struct kv_entry **slot;
    unsigned char *copy = malloc(value_len > 0 ? value_len : 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, value, value_len);
    if (store->count >= store->bucket_count && kv_grow(store) != 0) {
        free(copy);
        return -1;
    }
    slot = kv_slot(store, key, key_len, hash);
    if (*slot == NULL) {
        struct kv_entry *e = malloc(sizeof *e + key_len);
        if (e == NULL) {
            free(copy);
            return -1;
        }
        e->next = NULL;
        e->hash = hash;
        e->key_len = key_len;
        memcpy(e->key, key, key_len);
        e->value = NULL;
        *slot = e;
        store->count++;
    }
    free((*slot)->value);
    (*slot)->value = copy;
    (*slot)->value_len = value_len;
    return 0;
}

int kv_get(const struct kv_store *store, const unsigned char *key, size_t key_len,
           const unsigned char **value, size_t *value_len)
{
    struct kv_entry **slot;
    if (store->bucket_count == 0) {
        return 0;
    }
    slot = kv_slot(store, key, key_len, kv_hash(key, key_len));
    if (*slot == NULL) {
        return 0;
    }
    *value = (*slot)->value;
    *value_len = (*slot)->value_len;
    return 1;
}

int kv_del(struct kv_store *store, const unsigned char *key, size_t key_len)
{
    struct kv_entry **slot;
    struct kv_entry *e;
    if (store->bucket_count == 0) {
        return 0;
    }
    slot = kv_slot(store, key, key_len, kv_hash(key, key_len));
    e = *slot;
    if (e == NULL) {
        return 0;
    }
    *slot = e->next;
    free(e->value);
    free(e);
    store->count--;
    return 1;
}

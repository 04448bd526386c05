"""The AUC ratio of a model to the ex-ante oracle on its test loans, and its paired bootstrap
spread (200 resamples of the test loans, seed 42). Re-implements the artifact's scoring (bins,
WoE, the peer-relative reading with its history bands, if any) from model.json alone, so it also
checks the artifact is self-describing; the test loans are those on or after the out-of-time cut
that model.json's training split names. Usage, from the crate root, with the dataset and truth of
the model's REPRODUCE.md:

    python3 benches/auc_ratio_bootstrap.py models/sc-2026.12-sim45/model.json sim45.csv sim45-truth.csv
"""
import csv, json, math, random, re, sys
m = json.load(open(sys.argv[1]))
truth = {r['loan_id']: float(r['ex_ante_pd']) for r in csv.DictReader(open(sys.argv[3]))}
# "out of time: train = loans before 2025-09-22, test = loans on or after it"
cut = re.search(r'before (\d{4}-\d{2}-\d{2})', m['training']['split']).group(1)
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r['loan_date'] >= cut]
def val(r, f):
    rel = f.get('relative')
    src = rel['source'] if rel else f['name']
    v = r[src]
    if v == '': return None
    x = float(v)
    if rel:
        fl = rel['floor']
        if rel['scale'] == 'logit':
            p = min(max(x, fl), 1 - fl); y = math.log(p/(1-p))
        else:
            y = math.log(max(x, fl))
        refs, cat = rel['references'], r['category']
        ref = refs.get(cat, rel['default_reference'])
        cuts = rel.get('history_bands', [])
        if cuts and r['days_of_history'] != '':
            d = float(r['days_of_history'])
            i = sum(1 for c in cuts if d >= c)
            lo = cuts[i-1] if i > 0 else 0
            band = f'{lo}-{cuts[i]-1}d' if i < len(cuts) else f'{lo}d+'
            ref = refs.get(f'{cat}/{band}', ref)
        return y - ref
    return x
def woe(f, x):
    bins = f['bins']
    if x is None: return bins[-1]['woe']
    for b in bins:
        ru = b['rule']
        if ru['kind'] == 'range' and (ru['lower'] is None or x >= ru['lower']) and (ru['upper'] is None or x < ru['upper']):
            return b['woe']
    return bins[-1]['woe']
z = []
for r in rows:
    s = m['intercept'] + sum(f['coefficient'] * woe(f, val(r, f)) for f in m['features'])
    z.append(s)
y = [r['label'] == '1' for r in rows]
o = [truth[r['loan_id']] for r in rows]
def auc(sc, y):
    idx = sorted(range(len(sc)), key=lambda i: sc[i])
    # rank-based with ties averaged
    ranks = [0]*len(sc); i = 0
    while i < len(idx):
        j = i
        while j+1 < len(idx) and sc[idx[j+1]] == sc[idx[i]]: j += 1
        for k in range(i, j+1): ranks[idx[k]] = (i + j) / 2 + 1
        i = j + 1
    npos = sum(y); nneg = len(y) - npos
    return (sum(rk for rk, t in zip(ranks, y) if t) - npos*(npos+1)/2) / (npos*nneg)
a_m, a_o = auc(z, y), auc(o, y)
print('model', round(a_m, 4), 'oracle', round(a_o, 4), 'ratio', round(a_m/a_o, 4))
random.seed(42); rs = []
n = len(rows)
for b in range(200):
    ii = [random.randrange(n) for _ in range(n)]
    yy = [y[i] for i in ii]
    rs.append(auc([z[i] for i in ii], yy) / auc([o[i] for i in ii], yy))
mu = sum(rs)/len(rs); sd = (sum((x-mu)**2 for x in rs)/(len(rs)-1))**0.5
print('bootstrap ratio mean', round(mu,4), 'sd', round(sd,4), 'share >= 0.95', sum(x >= 0.95 for x in rs)/len(rs))

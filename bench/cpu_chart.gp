# gnuplot -e "datafile='cpu_a.dat'; outfile='docs/benchmarks.png'" bench/cpu_chart.gp
# Clustered bars: proxy CPU µs per request, scenario A (keep-alive HTTPS via CONNECT), per concurrency.
set terminal pngcairo size 900,520 enhanced font "sans,11" noenhanced
set output outfile
set title "Proxy CPU time per request, scenario A (keep-alive HTTPS, loopback) — lower is better"
set ylabel "CPU µs / request (utime+stime)"
set style data histograms
set style histogram clustered gap 1 errorbars lw 1
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key top left
set xtics nomirror
plot for [i=2:*] datafile using i:xtic(1) title columnheader(i)
